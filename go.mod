module portknock

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/spf13/pflag v1.0.10
	golang.org/x/sync v0.24.0
)
