package client

import (
	"encoding/base64"
	"io"
	"log"
	"strconv"
)

func itoa(i int) string     { return strconv.Itoa(i) }
func b64(b []byte) string   { return base64.StdEncoding.EncodeToString(b) }
func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }
