"""The generated ``council.v1`` modules, for code that needs more than the package re-exports.

``review_pb2`` holds the messages and enums, ``council_service_pb2`` the request and response
messages, and ``council_service_pb2_grpc`` the gRPC stub and servicer (typed by their ``.pyi``).
"""

from ._gen.council.v1 import council_service_pb2 as council_service_pb2
from ._gen.council.v1 import council_service_pb2_grpc as council_service_pb2_grpc
from ._gen.council.v1 import review_pb2 as review_pb2

__all__ = ["council_service_pb2", "council_service_pb2_grpc", "review_pb2"]
