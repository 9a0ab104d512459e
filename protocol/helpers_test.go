package protocol_test

import "encoding/base64"

func base64RawURL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
