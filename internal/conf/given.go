package conf

// Given reports whether the reference was written in the file or set in
// code (MustRef): what a Validate means by "required". A reference written
// but malformed counts as given; its parse error is reported on its own.
func (s SecretRef) Given() bool { return s.IsSet() || s.Ref() != "" }
