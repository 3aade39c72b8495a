package loadgen

import (
	"os"

	"github.com/tickwire/tickwire/internal/feed"
)

var ownPID = os.Getpid()

var feedTestConfig = feed.Config{MaxConnsPerIP: -1}
