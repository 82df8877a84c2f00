package txn_test

import "github.com/topolab/topo/resolver"

// The real kernel tests start resolvers as this test binary.
func init() { resolver.ServeIfInvoked() }
