package web

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/store"
)

// TestConcurrentRequests: pages, scrapes and one session's requests at
// once while the clock runs past the cache period and the token recheck
// (background rebuilds, session rechecks). Run under -race in CI.
func TestConcurrentRequests(t *testing.T) {
	var offset atomic.Int64
	_, hs := dashboard(t, Options{Now: func() time.Time { return fixNow.Add(time.Duration(offset.Load())) }})
	st := fleetStore(t)
	tok := token(t, st, store.RoleReadOnly)
	sc, _ := login(t, hs.URL, tok)
	var wg sync.WaitGroup
	var bad atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				offset.Add(int64(3 * time.Second))
				path := []string{"/", "/metrics", "/servers/" + realServer, "/certificates"}[(g+i)%4]
				var resp *http.Response
				var err error
				if g%2 == 0 {
					req, _ := http.NewRequest("GET", hs.URL+path, nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					resp, err = http.DefaultClient.Do(req)
				} else {
					resp, err = sc.Get(hs.URL + path)
				}
				if err != nil {
					bad.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Errorf("%d of 120 concurrent requests failed", n)
	}
}
