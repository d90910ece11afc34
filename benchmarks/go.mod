module github.com/nettune/nettune/benchmarks

go 1.26.0

require (
	github.com/DataDog/sketches-go v1.4.8
	github.com/HdrHistogram/hdrhistogram-go v1.4.0
	github.com/jackc/puddle/v2 v2.2.3
	github.com/libp2p/go-reuseport v0.4.0
	github.com/nettune/nettune v0.0.0
	github.com/prometheus/client_golang v1.24.1
	github.com/rs/dnscache v0.0.0-20230804202142-fc85eb664529
	github.com/stretchr/testify v1.12.1
	github.com/valyala/tcplisten v1.0.0
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.47.0
)

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.71.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/net v0.58.0 // indirect
	golang.org/x/sync v0.22.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace github.com/nettune/nettune => ../
