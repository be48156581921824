package acl

import (
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// hostile role names: quoting, separators, unicode, connection-string bait.
var roleNames = []string{"alice", "Bob Smith", `we"ird`, "semi;colon", "x host=evil port=1", "ünïcödé", "UPPER",
	"has,comma", "has=eq", "has/slash", "has{brace}", "trailing ", "new\nline", "a*b", "postgres"}

func TestACLParserAgreesWithAclexplode(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := pgtest.Ctx(t)
	conn, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, r := range roleNames[:len(roleNames)-1] {
		if _, err := conn.Exec(ctx, "CREATE ROLE "+pgx.Identifier{r}.Sanitize()); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewSource(42))
	cases := 3000
	compared, disagree := 0, 0
	batch := 100
	for done := 0; done < cases; done += batch {
		var in []string
		for i := 0; i < batch; i++ {
			var it Item
			if rng.Intn(5) == 0 {
				it.Grantee = Public
			} else {
				it.Grantee = roleNames[rng.Intn(len(roleNames))]
			}
			it.Grantor = roleNames[rng.Intn(len(roleNames))]
			for j := 0; j < len(privOrder)-1; j++ { // no MAINTAIN (m) before PostgreSQL 17
				if rng.Intn(3) == 0 {
					it.Grants = append(it.Grants, Grant{privNames[privOrder[j]], rng.Intn(3) == 0})
				}
			}
			if len(it.Grants) == 0 {
				it.Grants = []Grant{{"SELECT", false}}
			}
			in = append(in, it.String())
		}
		rows, err := conn.Query(ctx, `SELECT a::text, (SELECT array_agg(format('%s|%s|%s|%s', pg_get_userbyid(e.grantor),
			CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(e.grantee) END, e.privilege_type, e.is_grantable) ORDER BY 1)
			FROM aclexplode(ARRAY[a]) e) FROM unnest($1::text[]::aclitem[]) a`, in)
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for rows.Next() {
			var text string
			var want []string
			if err := rows.Scan(&text, &want); err != nil {
				t.Fatal(err)
			}
			it, err := ParseItem(text)
			var got []string
			if err == nil {
				for _, e := range Explode([]Item{it}) {
					got = append(got, fmt.Sprintf("%s|%s|%s|%s", e.Grantor, e.Grantee, e.Privilege, map[bool]string{true: "t", false: "f"}[e.Grantable]))
				}
			}
			sort.Strings(got)
			sort.Strings(want)
			compared++
			if err != nil || strings.Join(got, ";") != strings.Join(want, ";") || text != in[k] {
				disagree++
				if disagree < 10 {
					t.Errorf("aclitem %q (we wrote %q): err=%v\nserver: %v\nours:   %v", text, in[k], err, want, got)
				}
			}
			k++
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
	}
	t.Logf("aclitem: %d items compared with aclexplode(), %d disagreements", compared, disagree)
}

// The text form of aclitem[] (as relacl::text) parses to the same items.
func TestArrayTextAgreesWithServer(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := pgtest.Ctx(t)
	conn, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, r := range roleNames[:len(roleNames)-1] {
		conn.Exec(ctx, "CREATE ROLE "+pgx.Identifier{r}.Sanitize()) // may exist from the other test
	}
	var in []string
	for i, n := range roleNames {
		in = append(in, Item{Grantee: n, Grantor: roleNames[(i+3)%len(roleNames)], Grants: []Grant{{"SELECT", i%2 == 0}, {"UPDATE", false}}}.String())
	}
	var text string
	var elems []string
	if err := conn.QueryRow(ctx, `SELECT a::text, a::text[] FROM (SELECT $1::text[]::aclitem[] a) x`, in).Scan(&text, &elems); err != nil {
		t.Fatal(err)
	}
	got, err := ParseArrayText(text)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ParseList(elems)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("array text %s\nparsed %v\nwant   %v", text, got, want)
	}
}
