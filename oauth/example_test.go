package oauth_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/latchkey/latchkey/oauth"
	"github.com/latchkey/latchkey/store/sqlite"
)

// Register a confidential client and authenticate it, as POST /oauth/token
// does with the HTTP Basic credentials of a request.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "latchkey-example")
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "latchkey.db"))
	if err != nil {
		panic(err)
	}
	defer st.Close()

	clients := oauth.New(st, nil)
	_, secret, err := clients.Add(ctx, "billing", oauth.Options{Name: "billing backend", Confidential: true})
	if err != nil {
		panic(err)
	}
	c, err := clients.Authenticate(ctx, "billing", secret)
	fmt.Println(c.ID, c.Public(), err)
	_, err = clients.Authenticate(ctx, "billing", "a guess")
	fmt.Println(err)
	// Output:
	// billing false <nil>
	// invalid_client: The client is unknown or its authentication failed.
}
