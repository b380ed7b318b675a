package refreshtoken_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/latchkey/latchkey/refreshtoken"
)

func Example() {
	c, _ := refreshtoken.New(bytes.Repeat([]byte{7}, refreshtoken.KeySize))
	var sid refreshtoken.SessionID // normally refreshtoken.NewSessionID()
	s := c.Encode(refreshtoken.Token{Session: sid, Generation: 1})
	tok, err := c.Decode(s)
	fmt.Println(s[:6], len(s), tok.Generation, err)

	rotated := time.Unix(1_700_000_000, 0)
	fmt.Println(refreshtoken.Classify(1, 2, rotated, rotated.Add(3*time.Second), 10*time.Second))
	fmt.Println(refreshtoken.Classify(0, 2, rotated, rotated.Add(3*time.Second), 10*time.Second))
	// Output:
	// lk_rt_ 88 1 <nil>
	// grace
	// reused
}
