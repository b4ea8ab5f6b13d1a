// Built offline in GOPATH mode against Debian's packaged Go libraries (see docs/deployment.md):
//   GO111MODULE=off GOPATH=/usr/share/gocode go build -o helm-render .
// The requirements below name the versions Debian bookworm packages, for a module-mode build
// where a Go module proxy is reachable.
module github.com/sluice-proxy/sluice/helm/render

go 1.19

require (
	github.com/Masterminds/semver/v3 v3.2.0
	github.com/Masterminds/sprig/v3 v3.2.3
	github.com/xeipuuv/gojsonschema v1.2.0
	sigs.k8s.io/yaml v1.3.0
)
