package password_test

import (
	"fmt"
	"strings"

	"github.com/latchkey/latchkey/password"
)

func Example() {
	h, _ := password.Hash("correct horse battery", password.Default())
	fmt.Println(strings.HasPrefix(h, "$argon2id$v=19$m=7168,t=5,p=1$"))
	ok, _ := password.Verify(h, "correct horse battery")
	fmt.Println(ok)
	// Output:
	// true
	// true
}
