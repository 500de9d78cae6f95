package council

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	councilv1 "github.com/council-dev/council/clients/go/gen/council/v1"
)

// toolJSON is tool/council_review.json: a byte-for-byte copy of the repository's canonical
// clients/tool/council_review.json, shared by the three clients (go:embed cannot reach outside
// this module, so the copy lives here; the tests check that it is the same file).
//
//go:embed tool/council_review.json
var toolJSON []byte

// ToolName is the name of the tool, as a model calls it.
const ToolName = "council_review"

// Tool is the council_review tool for LLM tool calling, in the shape Anthropic's Messages API
// takes (name, description, input_schema); OpenAI gives the OpenAI shape. Its JSON encoding is
// the tool definition.
type Tool struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// InputSchema is the JSON Schema of a suggestion: id, title, description, reasoning, risk,
	// impact, auto_fixable, fix_steps, files_affected, estimated_effort and diff, enums as lower-case
	// words (risk "trivial" … "critical"). Unmarshal it into the type your framework wants.
	InputSchema json.RawMessage `json:"input_schema"`
}

// OpenAITool is a tool in the shape OpenAI's Chat Completions API takes: {"type": "function",
// "function": {"name", "description", "parameters"}}.
type OpenAITool struct {
	Type     string         `json:"type"`
	Function OpenAIFunction `json:"function"`
}

// OpenAIFunction is the function of an OpenAITool; Parameters is the JSON Schema.
type OpenAIFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
}

// ToolDefinition returns the council_review tool: give it to the model among its tools, and when
// the model calls it, turn the call's input into a suggestion with SuggestionFromToolInput, Guard
// it, act only if allowed, and answer the model with the verdict's ToolResult. Each call returns
// a fresh copy.
func ToolDefinition() Tool {
	var t Tool
	if err := json.Unmarshal(toolJSON, &t); err != nil {
		panic("council: the embedded tool definition is not valid JSON: " + err.Error())
	}
	return t
}

// ToolDefinitionJSON returns the tool definition as the canonical file has it, byte for byte.
func ToolDefinitionJSON() []byte {
	return bytes.Clone(toolJSON)
}

// OpenAI returns the tool in the shape OpenAI's Chat Completions API takes.
func (t Tool) OpenAI() OpenAITool {
	return OpenAITool{Type: "function", Function: OpenAIFunction{Name: t.Name, Description: t.Description, Parameters: bytes.Clone(t.InputSchema)}}
}

// toolSchema is what SuggestionFromToolInput reads from the embedded schema: the fields, in
// order, and each one's enum words.
type toolSchema struct {
	Properties map[string]struct {
		Enum []string `json:"enum"`
	} `json:"properties"`
}

// ToolResult is the tool's answer to the model (JSON-ready, snake_case like the input): whether
// it may go ahead, why, and what it must respect.
type ToolResult struct {
	Allowed    bool         `json:"allowed"`
	Outcome    GuardOutcome `json:"outcome"`
	Reason     string       `json:"reason"`
	DecisionID string       `json:"decision_id"`
	Conditions []string     `json:"conditions"`
}

// ToolResult returns the verdict as the council_review tool's result for the model.
func (v *GuardVerdict) ToolResult() ToolResult {
	conditions := slices.Clone(v.Conditions)
	if conditions == nil {
		conditions = []string{}
	}
	return ToolResult{Allowed: v.Allowed, Outcome: v.Outcome, Reason: v.Reason, DecisionID: v.DecisionID, Conditions: conditions}
}

// SuggestionFromToolInput returns the suggestion a model's council_review tool call describes.
// input is the call's input as JSON: Anthropic's tool_use input, or OpenAI's function arguments
// (a JSON text already). It is checked against the tool's schema: an object, no unknown fields,
// id and title present and not blank, risk and impact one of their words, the other fields of
// their type or absent (null counts as absent: models send it for fields they leave out). A
// mismatch is an *Error with code INVALID_ARGUMENT whose Field names the first field at fault,
// e.g. `risk: must be one of "trivial", "low", "medium", "high", "critical", not "severe"`: hand
// the message back to the model as the tool's result, so that it can call again. The server
// checks the suggestion again (lengths, limits) when it is reviewed.
func SuggestionFromToolInput(input []byte) (*councilv1.Suggestion, error) {
	var schema toolSchema
	if err := json.Unmarshal(ToolDefinition().InputSchema, &schema); err != nil {
		panic("council: the embedded tool schema is not valid JSON: " + err.Error())
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(input, &fields); err != nil || fields == nil {
		return nil, toolInputError("input", "must be a JSON object")
	}
	var unknown []string
	for name := range fields {
		if _, ok := schema.Properties[name]; !ok {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		names := make([]string, 0, len(schema.Properties))
		for name := range schema.Properties {
			names = append(names, name)
		}
		slices.Sort(names)
		return nil, toolInputError(unknown[0], "is not a field of the suggestion (the fields are "+strings.Join(names, ", ")+")")
	}

	// In the schema's order, so that the first field at fault is named.
	r := toolInput{fields: fields}
	s := &councilv1.Suggestion{}
	s.Id = r.text("id", true)
	s.Title = r.text("title", true)
	s.Description = r.text("description", false)
	s.Reasoning = r.text("reasoning", false)
	s.Risk = councilv1.RiskLevel(r.word("risk", true, "RISK_LEVEL_", councilv1.RiskLevel_value, schema.Properties["risk"].Enum))
	s.Impact = councilv1.ImpactLevel(r.word("impact", true, "IMPACT_LEVEL_", councilv1.ImpactLevel_value, schema.Properties["impact"].Enum))
	s.AutoFixable = r.boolean("auto_fixable")
	s.FixSteps = r.texts("fix_steps")
	s.FilesAffected = r.texts("files_affected")
	s.EstimatedEffort = councilv1.Effort(r.word("estimated_effort", false, "EFFORT_", councilv1.Effort_value, schema.Properties["estimated_effort"].Enum))
	s.Diff = r.text("diff", false)
	if r.err != nil {
		return nil, r.err
	}
	return s, nil
}

// toolInput reads the fields of a tool input, keeping the first error.
type toolInput struct {
	fields map[string]json.RawMessage
	err    error
}

// value decodes field into v; false if the field is absent or null (or an error is kept already).
func (r *toolInput) value(field string, required bool, v any, what string) bool {
	if r.err != nil {
		return false
	}
	raw, ok := r.fields[field]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		if required {
			r.err = toolInputError(field, "is required")
		}
		return false
	}
	if err := json.Unmarshal(raw, v); err != nil {
		got := string(raw)
		if len(got) > 60 {
			got = strings.ToValidUTF8(got[:60], "") + "…"
		}
		r.err = toolInputError(field, "must be "+what+", not "+got)
		return false
	}
	return true
}

func (r *toolInput) text(field string, required bool) string {
	var s string
	if !r.value(field, required, &s, "a string") {
		return ""
	}
	if required && strings.TrimSpace(s) == "" {
		r.err = toolInputError(field, "must not be empty")
	}
	return s
}

func (r *toolInput) boolean(field string) bool {
	var b bool
	r.value(field, false, &b, "true or false")
	return b
}

func (r *toolInput) texts(field string) []string {
	var list []string
	r.value(field, false, &list, "a list of strings")
	return list
}

// word reads an enum field: one of words, turned into the proto enum's number (prefix + the word
// in upper case). Absent and optional: 0, the enum's UNSPECIFIED.
func (r *toolInput) word(field string, required bool, prefix string, numbers map[string]int32, words []string) int32 {
	var w string
	if !r.value(field, required, &w, "a string") {
		return 0
	}
	n, ok := numbers[prefix+strings.ToUpper(w)]
	if !slices.Contains(words, w) || !ok {
		quoted := make([]string, len(words))
		for i, word := range words {
			quoted[i] = fmt.Sprintf("%q", word)
		}
		r.err = toolInputError(field, fmt.Sprintf("must be one of %s, not %q", strings.Join(quoted, ", "), w))
		return 0
	}
	return n
}

// toolInputError is an INVALID_ARGUMENT *Error naming the field, as the server's are.
func toolInputError(field, what string) error {
	return newError(status.New(codes.InvalidArgument, field+": "+what))
}
