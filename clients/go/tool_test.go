package council_test

// The council_review tool: the embedded definition is the canonical file, its schema is the
// suggestion's fields, the converter checks a model's input and names the field at fault, and the
// example wires the guard around an action as a tool call.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	council "github.com/council-dev/council/clients/go"
	councilv1 "github.com/council-dev/council/clients/go/gen/council/v1"
)

type schema struct {
	Type       string `json:"type"`
	Properties map[string]struct {
		Type string   `json:"type"`
		Enum []string `json:"enum"`
	} `json:"properties"`
	Required             []string `json:"required"`
	AdditionalProperties *bool    `json:"additionalProperties"`
}

func TestTheEmbeddedToolDefinitionIsTheCanonicalFile(t *testing.T) {
	canonical, err := os.ReadFile("../tool/council_review.json")
	if err != nil {
		t.Fatalf("the canonical file (the tests run in clients/go of a checkout): %v", err)
	}
	if !bytes.Equal(council.ToolDefinitionJSON(), canonical) {
		t.Fatal("tool/council_review.json differs from clients/tool/council_review.json: copy it again (cp ../tool/council_review.json tool/)")
	}

	tool := council.ToolDefinition()
	if council.ToolName != "council_review" || tool.Name != council.ToolName || tool.Description == "" {
		t.Errorf("tool %q: %q", tool.Name, tool.Description)
	}
	var s schema
	if err := json.Unmarshal(tool.InputSchema, &s); err != nil {
		t.Fatal(err)
	}
	// Its properties are the suggestion's fields, by their proto names.
	fields := (&councilv1.Suggestion{}).ProtoReflect().Descriptor().Fields()
	var names []string
	for i := range fields.Len() {
		names = append(names, string(fields.Get(i).Name()))
	}
	var props []string
	for name := range s.Properties {
		props = append(props, name)
	}
	slices.Sort(names)
	slices.Sort(props)
	if !slices.Equal(names, props) {
		t.Errorf("schema properties %v, suggestion fields %v", props, names)
	}
	if s.Type != "object" || s.AdditionalProperties == nil || *s.AdditionalProperties ||
		!slices.Equal(s.Required, []string{"id", "title", "risk", "impact"}) {
		t.Errorf("schema %+v", s)
	}
	// Its enums are the proto enums' values, lower case, without UNSPECIFIED.
	for field, enum := range map[string]protoreflect.EnumDescriptor{
		"risk":             councilv1.RiskLevel(0).Descriptor(),
		"impact":           councilv1.ImpactLevel(0).Descriptor(),
		"estimated_effort": councilv1.Effort(0).Descriptor(),
	} {
		var words []string
		for i := 1; i < enum.Values().Len(); i++ {
			name := string(enum.Values().Get(i).Name())
			words = append(words, strings.ToLower(name[strings.LastIndexByte(name, '_')+1:]))
		}
		if got := s.Properties[field].Enum; !slices.Equal(got, words) {
			t.Errorf("%s: schema enum %v, proto values %v", field, got, words)
		}
	}

	// Each call gives a fresh copy; the OpenAI shape carries the same schema.
	tool.InputSchema[0] = 'x'
	if council.ToolDefinition().InputSchema[0] != '{' {
		t.Error("changing a returned definition changed the next one")
	}
	openai, err := json.Marshal(council.ToolDefinition().OpenAI())
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		Type     string `json:"type"`
		Function struct {
			Name       string `json:"name"`
			Parameters schema `json:"parameters"`
		} `json:"function"`
	}
	if err := json.Unmarshal(openai, &o); err != nil || o.Type != "function" || o.Function.Name != "council_review" ||
		!slices.Equal(o.Function.Parameters.Required, s.Required) {
		t.Errorf("OpenAI shape %s (%v)", openai, err)
	}
}

func TestSuggestionFromToolInputChecksTheSchemaAndNamesTheField(t *testing.T) {
	full := `{"id": "T-1", "title": "Add retry", "description": "Retry 3 times.", "reasoning": "Flaky upstream.",
		"risk": "low", "impact": "medium", "auto_fixable": true, "fix_steps": ["Wrap", "Test"],
		"files_affected": ["src/a.ts"], "estimated_effort": "small", "diff": "--- a/src/a.ts\n+++ b/src/a.ts\n@@ -1 +1 @@\n-get()\n+retry(get)\n"}`
	got, err := council.SuggestionFromToolInput([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	want := &councilv1.Suggestion{
		Id: "T-1", Title: "Add retry", Description: "Retry 3 times.", Reasoning: "Flaky upstream.",
		Risk: councilv1.RiskLevel_RISK_LEVEL_LOW, Impact: councilv1.ImpactLevel_IMPACT_LEVEL_MEDIUM, AutoFixable: true,
		FixSteps: []string{"Wrap", "Test"}, FilesAffected: []string{"src/a.ts"}, EstimatedEffort: councilv1.Effort_EFFORT_SMALL,
		Diff: "--- a/src/a.ts\n+++ b/src/a.ts\n@@ -1 +1 @@\n-get()\n+retry(get)\n",
	}
	if !proto.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// The required fields only; null for an optional one is absent.
	got, err = council.SuggestionFromToolInput([]byte(`{"id": "T-2", "title": "t", "risk": "critical", "impact": "transformative", "fix_steps": null, "estimated_effort": null}`))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, &councilv1.Suggestion{Id: "T-2", Title: "t", Risk: councilv1.RiskLevel_RISK_LEVEL_CRITICAL, Impact: councilv1.ImpactLevel_IMPACT_LEVEL_TRANSFORMATIVE}) {
		t.Errorf("got %v", got)
	}

	for _, tc := range []struct {
		input, field, says string
	}{
		{`[1, 2]`, "input", "must be a JSON object"},
		{`not json`, "input", "must be a JSON object"},
		{`null`, "input", "must be a JSON object"},
		{`{"id": "T", "title": "t", "risk": "low", "impact": "low", "tags": ["x"]}`, "tags", "is not a field of the suggestion"},
		{`{"title": "t", "risk": "low", "impact": "low"}`, "id", "is required"},
		{`{"id": null, "title": "t", "risk": "low", "impact": "low"}`, "id", "is required"},
		{`{"id": "T", "title": "  ", "risk": "low", "impact": "low"}`, "title", "must not be empty"},
		{`{"id": 7, "title": "t", "risk": "low", "impact": "low"}`, "id", "must be a string, not 7"},
		{`{"id": "T", "title": "t", "impact": "low"}`, "risk", "is required"},
		{`{"id": "T", "title": "t", "risk": "severe", "impact": "low"}`, "risk",
			`must be one of "trivial", "low", "medium", "high", "critical", not "severe"`},
		{`{"id": "T", "title": "t", "risk": "LOW", "impact": "low"}`, "risk", "must be one of"},
		{`{"id": "T", "title": "t", "risk": "low", "impact": "huge"}`, "impact", "must be one of"},
		{`{"id": "T", "title": "t", "risk": "low", "impact": "low", "auto_fixable": "yes"}`, "auto_fixable", "must be true or false"},
		{`{"id": "T", "title": "t", "risk": "low", "impact": "low", "fix_steps": "do it"}`, "fix_steps", "must be a list of strings"},
		{`{"id": "T", "title": "t", "risk": "low", "impact": "low", "files_affected": [1]}`, "files_affected", "must be a list of strings"},
		{`{"id": "T", "title": "t", "risk": "low", "impact": "low", "estimated_effort": "tiny"}`, "estimated_effort", `"small", "medium", "large", "epic"`},
		{`{"id": "T", "title": "t", "risk": "low", "impact": "low", "diff": ["+x"]}`, "diff", "must be a string"},
	} {
		_, err := council.SuggestionFromToolInput([]byte(tc.input))
		var cerr *council.Error
		if !errors.Is(err, council.ErrInvalidArgument) || !errors.As(err, &cerr) || cerr.Field != tc.field ||
			!strings.HasPrefix(cerr.Message, tc.field+": ") || !strings.Contains(cerr.Message, tc.says) {
			t.Errorf("%s: got %v, want INVALID_ARGUMENT naming %s: …%s…", tc.input, err, tc.field, tc.says)
		}
	}

	// What the converter makes, the council reviews.
	c := dial(t)
	s, err := council.SuggestionFromToolInput([]byte(strings.Replace(full, `"T-1"`, `"`+suggestionID(t, "tool")+`"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Guard(bounded(t, 15*time.Second), s)
	if err != nil {
		t.Fatal(err)
	}
	result, err := json.Marshal(v.ToolResult())
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	if err := json.Unmarshal(result, &r); err != nil {
		t.Fatal(err)
	}
	if r["allowed"] != true || r["outcome"] != "approved" || r["decision_id"] != v.DecisionID || r["reason"] != v.Reason || r["conditions"] == nil {
		t.Errorf("tool result %s for verdict %+v", result, v)
	}
}

func TestTheToolCallExampleGuardsTheAction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", "./examples/toolcall", addr)
	cmd.Env = append(os.Environ(), "COUNCIL_TOKEN=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run ./examples/toolcall %s: %v\n%s", addr, err, out)
	}
	text := string(out)
	for _, want := range []string{
		`tool result for toolu_01: {"error":"risk: must be one of`,
		"vote: REVIEWER_ROLE_SAFETY",
		"acting: Add retry with backoff to the webhook sender (TICKET-4711)",
		`tool result for toolu_02: {"allowed":true,"outcome":"approved"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the example's output lacks %q:\n%s", want, text)
		}
	}
	if strings.Index(text, "acting:") < strings.Index(text, "vote: REVIEWER_ROLE_QUALITY") {
		t.Errorf("the example acted before the council decided:\n%s", text)
	}
}
