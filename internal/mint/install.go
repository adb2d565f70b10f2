package mint

import (
	"fmt"
	"path/filepath"
)

// Instructions is what `portcullis ca new` prints after writing a CA to
// certPath and keyPath: the server.inspect_ca lines to paste and how to
// make common clients trust the CA. It never includes the key itself.
func Instructions(certPath, keyPath string) string {
	cert, key := absOr(certPath), absOr(keyPath)
	return fmt.Sprintf(`Wrote the inspect CA certificate to %[1]s and its key (mode 0600) to %[2]s.

1. Configure the gateway (the key is a secret reference: file:, env: or vault:):

   server:
     inspect_ca:
       cert: %[1]s
       key: file:%[2]s
   integrations:
     NAME:
       proxy: {mode: enforce, inspect: true}

   Better: keep the key in Vault (vault:secret/data/portcullis/inspect-ca#key)
   and delete the key file.

2. Make each client trust the CA certificate (never copy the key to clients).
   Keep the system roots too: hosts that are not inspected still present
   their own certificates through the tunnel.

   A bundle of the system roots and the CA, for the clients that replace
   their roots with a file:
     cat /etc/ssl/certs/ca-certificates.crt %[1]s > bundle.pem

   Go (net/http, Linux):  SSL_CERT_DIR=DIR, a directory holding only a copy
                          of the certificate (Go reads it on top of the
                          system bundle), or
                          SSL_CERT_FILE=bundle.pem   (replaces the system roots)
   Node:                  NODE_EXTRA_CA_CERTS=%[1]s   (added to the built-in roots)
   Python urllib / ssl:   SSL_CERT_FILE=bundle.pem
   Python requests:       REQUESTS_CA_BUNDLE=bundle.pem
   Java:                  cp "$JAVA_HOME/lib/security/cacerts" truststore.jks
                          keytool -importcert -noprompt -alias portcullis-inspect \
                            -file %[1]s -keystore truststore.jks -storepass changeit
                          java -Djavax.net.ssl.trustStore=truststore.jks \
                            -Djavax.net.ssl.trustStorePassword=changeit ...
   curl:                  curl --cacert %[1]s ...   or CURL_CA_BUNDLE=%[1]s

   Then point the client at the gateway: HTTPS_PROXY=http://GATEWAY:PORT

Anyone holding the key can impersonate any host (any host under --permit, if
given) to the clients that trust this CA: keep it at 0600, in Vault if you can.
`, cert, key)
}

func absOr(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
