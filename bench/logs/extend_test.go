package main

import (
	"bufio"
	"bytes"
	"testing"
	"time"
)

// Lines as PostgreSQL 15 wrote them in one run of the bench.
const (
	stderrLine = "2026-12-02 02:50:23.152 UTC [23005] postgres@postgres from 127.0.0.1 LOG:  AUDIT: SESSION,1,1,ROLE,CREATE ROLE,,,CREATE ROLE app LOGIN PASSWORD <REDACTED>,<not logged>\n"
	contLine   = "\tConnection matched pg_hba.conf line 4: \"host all all 127.0.0.0/29 scram-sha-256\"\n"
	csvLine    = `2026-12-02 02:50:23.152 UTC,"postgres","postgres",23005,"127.0.0.1:55074",6b0f876f.59dd,5,"CREATE ROLE",2026-12-02 02:50:23 UTC,3/6,725,LOG,00000,"AUDIT: SESSION,1,1,ROLE,CREATE ROLE,,,CREATE ROLE app LOGIN PASSWORD <REDACTED>,<not logged>",,,,,,,,,"pgaegis-localpg","client backend",,0` + "\n"
	jsonLine   = `{"timestamp":"2026-12-02 02:50:23.152 UTC","user":"postgres","dbname":"postgres","pid":23005,"remote_host":"127.0.0.1","remote_port":55074,"session_id":"6b0f876f.59dd","line_num":5,"ps":"CREATE ROLE","session_start":"2026-12-02 02:50:23 UTC","vxid":"3/6","txid":725,"error_severity":"LOG","message":"AUDIT: SESSION,1,1,ROLE,CREATE ROLE,,,CREATE ROLE app LOGIN PASSWORD <REDACTED>,<not logged>","application_name":"pgaegis-localpg","backend_type":"client backend","query_id":0}` + "\n"
)

func TestCopyAdvancesHeaders(t *testing.T) {
	// 0x10 s later and 16 pids on: both visible in the hex session id.
	s := shift{dt: 16 * time.Second, dpid: 16}
	for _, c := range []struct{ f, in, want string }{
		{"stderr", stderrLine + contLine, "2026-12-02 02:50:55.152 UTC [23037] postgres@postgres from 127.0.0.1 LOG:  AUDIT: SESSION,1,1,ROLE,CREATE ROLE,,,CREATE ROLE app LOGIN PASSWORD <REDACTED>,<not logged>\n" + contLine},
		{"csvlog", csvLine, `2026-12-02 02:50:55.152 UTC,"postgres","postgres",23037,"127.0.0.1:55074",6b0f878f.59fd,5,"CREATE ROLE",2026-12-02 02:50:55 UTC,3/6,725,LOG,00000,"AUDIT: SESSION,1,1,ROLE,CREATE ROLE,,,CREATE ROLE app LOGIN PASSWORD <REDACTED>,<not logged>",,,,,,,,,"pgaegis-localpg","client backend",,0` + "\n"},
		{"jsonlog", jsonLine, `{"timestamp":"2026-12-02 02:50:55.152 UTC","user":"postgres","dbname":"postgres","pid":23037,"remote_host":"127.0.0.1","remote_port":55074,"session_id":"6b0f878f.59fd","line_num":5,"ps":"CREATE ROLE","session_start":"2026-12-02 02:50:55 UTC","vxid":"3/6","txid":725,"error_severity":"LOG","message":"AUDIT: SESSION,1,1,ROLE,CREATE ROLE,,,CREATE ROLE app LOGIN PASSWORD <REDACTED>,<not logged>","application_name":"pgaegis-localpg","backend_type":"client backend","query_id":0}` + "\n"},
	} {
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		if err := s.copy(w, []byte(c.in), c.f, 2); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		if b.String() != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.f, b.String(), c.want)
		}
	}
}

func TestLeadingSliceEndsOnARecord(t *testing.T) {
	if !recordStart([]byte(stderrLine), "stderr") || recordStart([]byte(contLine), "stderr") {
		t.Error("stderr record starts")
	}
	if !recordStart([]byte(csvLine), "csvlog") || recordStart([]byte("inside a quoted field\n"), "csvlog") {
		t.Error("csvlog record starts")
	}
}
