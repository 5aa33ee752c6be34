package audit

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/pgtest"
)

// The role model (sql/audit/21_role_model.sql) names the roles of
// db/dbtype/dbtype.go, all of them and no other: the audit judges the policies
// by the same words the Go code sets in app.role.
func TestRoleModelSpeaksTheVocabulary(t *testing.T) {
	t.Parallel()
	model, err := RoleModel(context.Background(), pgtest.New(t).AdminPool(t))
	require.NoError(t, err)
	var named []string
	for _, c := range model {
		named = append(named, c.AppRole)
	}
	slices.Sort(named)
	var want []string
	for _, r := range append(dbtype.ClientRoles(), dbtype.RoleAuth) {
		want = append(want, string(r))
	}
	slices.Sort(want)
	require.Equal(t, want, slices.Compact(named))
}
