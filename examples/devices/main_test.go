package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Hosted there is no platform: the example says so and succeeds. The
// device paths run in cmd/anyk's boot tests.
func TestRunHosted(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out))
	assert.Equal(t, "not on the anykernel platform\n", out.String())
}
