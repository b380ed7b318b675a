package users

// SetVerifyHook lets the black-box tests count argon2id verifications.
func SetVerifyHook(f func()) { verifications = f }
