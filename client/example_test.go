package client_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/latchkey/latchkey/client"
)

// A Transport turns an http.Client into one that keeps a latchkey session
// alive: every request carries the current access token, and refreshes happen
// once however many goroutines share it.
func Example() {
	tr, err := client.New(client.Config{
		Server: "https://auth.example.com",
		Token:  client.Token{AccessToken: "eyJ…", RefreshToken: "lk_rt_…", Expiry: time.Now().Add(15 * time.Minute)},
		Save: func(ctx context.Context, t client.Token) error {
			return nil // persist t.RefreshToken: the old one is spent
		},
	})
	if err != nil {
		panic(err)
	}
	api := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	_ = api // api.Get("https://api.example.com/things") …
	fmt.Println(tr.Token().RefreshToken)
	// Output: lk_rt_…
}
