package config

import "github.com/portcullis-dev/portcullis/internal/conf"

// The config's scalar value types live in package conf, where component
// Specs can use them; these names keep config's callers unchanged.
type (
	Duration  = conf.Duration
	Size      = conf.Size
	Rate      = conf.Rate
	Date      = conf.Date
	SecretRef = conf.SecretRef
)

var (
	Dur            = conf.Dur
	Bytes          = conf.Bytes
	MustRef        = conf.MustRef
	ParseDuration  = conf.ParseDuration
	ParseSize      = conf.ParseSize
	ParseRate      = conf.ParseRate
	ParseSecretRef = conf.ParseSecretRef
	ErrPlainSecret = conf.ErrPlainSecret
)
