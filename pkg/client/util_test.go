package client_test

import "fmt"

var sprintf = fmt.Sprintf
