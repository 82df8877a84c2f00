package daemon

import (
	"testing"

	"github.com/topolab/topo/internal/sandbox"
)

func TestMain(m *testing.M) { sandbox.Main(m) }
