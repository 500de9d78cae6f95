// Command toolcall wires Council's guard around an agent's action the way an agent framework
// does LLM tool calling: the agent offers the model the council_review tool (ToolDefinition), the
// model calls it with the change it proposes, the agent turns the call's input into a suggestion
// (SuggestionFromToolInput), guards it, acts only if the council allows it, and answers the model
// with the verdict (ToolResult). A model's bad input is answered with the error, naming the field,
// so that the model can call again.
//
// The model is simulated: its tool calls are fixed inputs, as an Anthropic tool_use block or an
// OpenAI tool call would carry them. Swap modelTurn for your framework's call to the model.
//
//	go run ./examples/toolcall [host:port]
//
// The address comes from the first argument, else COUNCIL_ADDR, else 127.0.0.1:50051;
// COUNCIL_TOKEN, if set, is sent as a bearer token.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	council "github.com/council-dev/council/clients/go"
	councilv1 "github.com/council-dev/council/clients/go/gen/council/v1"
)

// toolCall is what a model's turn carries when it calls a tool: an Anthropic tool_use block (id,
// name, input) or an OpenAI tool call (id, function.name, function.arguments).
type toolCall struct {
	ID    string
	Name  string
	Input json.RawMessage
}

// modelTurn stands for the framework's call to the model with the tools it may use and the tool
// results so far. This model proposes a change with a risk the schema does not know; told why, it
// proposes the change again with a risk the schema allows.
func modelTurn(tools []council.Tool, results []string) toolCall {
	if len(tools) == 0 || tools[0].Name != council.ToolName {
		panic("the model was not offered the council_review tool")
	}
	risk := "severe"
	if len(results) > 0 {
		risk = "low"
	}
	return toolCall{
		ID:   fmt.Sprintf("toolu_%02d", len(results)+1),
		Name: council.ToolName,
		Input: json.RawMessage(`{
			"id": "TICKET-4711",
			"title": "Add retry with backoff to the webhook sender",
			"description": "Retry failed webhook deliveries up to 3 times with exponential backoff.",
			"reasoning": "About 1% of deliveries fail on transient network errors.",
			"risk": "` + risk + `",
			"impact": "medium",
			"auto_fixable": true,
			"fix_steps": ["Wrap send() in a retry loop", "Add a test for the retry path"],
			"files_affected": ["src/webhooks/sender.ts", "test/webhooks/sender.test.ts"],
			"estimated_effort": "small"
		}`),
	}
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "toolcall:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := os.Getenv("COUNCIL_ADDR")
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	if addr == "" {
		addr = "127.0.0.1:50051"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var opts []council.Option
	if token := os.Getenv("COUNCIL_TOKEN"); token != "" {
		opts = append(opts, council.WithToken(token))
	}
	client, err := council.Dial(ctx, addr, opts...)
	if err != nil {
		return err
	}
	defer client.Close()

	tools := []council.Tool{council.ToolDefinition()} // what the agent offers the model
	var results []string                              // the tool results the model has been given
	for turn := 0; turn < 3; turn++ {
		call := modelTurn(tools, results)
		fmt.Printf("model calls %s (%s)\n", call.Name, call.ID)
		result, acted, err := handle(ctx, client, call)
		if err != nil {
			return err // the council could not be asked: not the model's to fix
		}
		fmt.Printf("tool result for %s: %s\n", call.ID, result)
		results = append(results, result)
		if acted {
			return nil
		}
	}
	return errors.New("the model never proposed a change the council allowed")
}

// handle runs one tool call: the guard around the action. It returns the tool result for the
// model and whether the action ran; an error means the council could not answer at all.
func handle(ctx context.Context, client *council.Client, call toolCall) (result string, acted bool, err error) {
	if call.Name != council.ToolName {
		return `{"error": "unknown tool"}`, false, nil
	}
	suggestion, err := council.SuggestionFromToolInput(call.Input)
	if err != nil {
		// The model's input does not fit the schema: tell it which field, so it can call again.
		return toolError(err), false, nil
	}
	verdict, err := client.Guard(ctx, suggestion,
		council.OnVote(func(v *councilv1.Vote) {
			fmt.Printf("  vote: %v %v %.2f\n", v.GetReviewerRole(), v.GetVote(), v.GetConfidence())
		}))
	var cerr *council.Error
	if errors.As(err, &cerr) && cerr.Field != "" {
		return toolError(err), false, nil // the server refused a field (a limit): the model's to fix
	}
	if err != nil {
		return "", false, err
	}
	if verdict.Allowed {
		act(suggestion, verdict.Conditions)
	} else {
		fmt.Printf("not acting (%s): %s\n", verdict.Outcome, verdict.Reason)
	}
	out, err := json.Marshal(verdict.ToolResult())
	if err != nil {
		return "", false, err
	}
	return string(out), verdict.Allowed, nil
}

// act is the agent's action, run only when the council allowed it, within its conditions.
func act(s *councilv1.Suggestion, conditions []string) {
	fmt.Printf("acting: %s (%s)\n", s.GetTitle(), s.GetId())
	for _, c := range conditions {
		fmt.Printf("  within: %s\n", c)
	}
}

// toolError is the tool result that hands an error back to the model.
func toolError(err error) string {
	var cerr *council.Error
	message := err.Error()
	if errors.As(err, &cerr) {
		message = cerr.Message
	}
	out, _ := json.Marshal(map[string]string{"error": message})
	return string(out)
}
