module example.com/billing

go 1.22

require (
	github.com/google/uuid v1.6.0
	github.com/stripe/stripe-go/v76 v76.8.0
	github.com/twilio/twilio-go v1.20.0
)
