module portknock

go 1.26

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/spf13/pflag v1.0.10 // indirect
	golang.org/x/sync v0.24.0 // indirect
)
