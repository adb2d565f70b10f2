package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestProxyInjectsOnlyTheKey(t *testing.T) {
	var got http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		_, _ = w.Write([]byte("ok"))
	}))
	defer up.Close()
	u, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(newProxy(u, "sk_vendor"))
	defer front.Close()
	req, _ := http.NewRequest(http.MethodGet, front.URL+"/v1/items/42", nil)
	req.Header.Set("Authorization", "Bearer pcs_caller_token")
	req.Header.Set("Accept", "application/json")
	resp, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	type seen struct{ Authorization, Accept string }
	if diff := cmp.Diff(seen{"Bearer sk_vendor", "application/json"}, seen{got.Get("Authorization"), got.Get("Accept")}); diff != "" {
		t.Errorf("upstream saw (-want +got):\n%s", diff)
	}
}
