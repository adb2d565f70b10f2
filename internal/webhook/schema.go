package webhook

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// ErrSchema marks a verified body that does not satisfy the webhook's JSON
// schema (or is not JSON).
var ErrSchema = errors.New("webhook: body does not match the schema")

// compileSchema loads a JSON schema file (relative paths from baseDir). The
// compiler's default loader reads local files only: a $ref to a URL fails at
// start-up instead of reaching out to the network.
func compileSchema(path, baseDir string) (*jsonschema.Schema, error) {
	if !filepath.IsAbs(path) && baseDir != "" {
		path = filepath.Join(baseDir, path)
	}
	sch, err := jsonschema.NewCompiler().Compile(path)
	if err != nil {
		return nil, fmt.Errorf("webhook: schema %s: %w", path, err)
	}
	return sch, nil
}

func checkSchema(sch *jsonschema.Schema, body []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: not JSON", ErrSchema)
	}
	if err := sch.Validate(inst); err != nil {
		// Only where and which keyword failed: the library's message can quote
		// body values, and bodies may carry personal data.
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			for len(ve.Causes) > 0 {
				ve = ve.Causes[0]
			}
			return fmt.Errorf("%w: keyword %s at /%s", ErrSchema,
				strings.Join(ve.ErrorKind.KeywordPath(), "/"), strings.Join(ve.InstanceLocation, "/"))
		}
		return ErrSchema
	}
	return nil
}
