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

   Better: keep the key in Vault (vault:secret/data/portcullis#inspect_ca_key)
   and delete the key file.

2. Make each client trust the CA certificate (never copy the key to clients).
   Keep the system roots too: hosts that are not inspected still present
   their own certificates through the tunnel.

   Go (net/http, Linux):  SSL_CERT_FILE=%[1]s replaces the system roots;
                          to add to them, append the file to a bundle:
                          cat /etc/ssl/certs/ca-certificates.crt %[1]s > bundle.pem
                          SSL_CERT_FILE=bundle.pem   (or put it in a dir named by SSL_CERT_DIR)
   Node:                  NODE_EXTRA_CA_CERTS=%[1]s   (added to the built-in roots)
   Python urllib / ssl:   SSL_CERT_FILE=bundle.pem    (replaces the default roots)
   Python requests:       REQUESTS_CA_BUNDLE=bundle.pem
   Java:                  cp "$JAVA_HOME/lib/security/cacerts" truststore.jks
                          keytool -importcert -noprompt -alias portcullis-inspect \
                            -file %[1]s -keystore truststore.jks -storepass changeit
                          java -Djavax.net.ssl.trustStore=truststore.jks \
                            -Djavax.net.ssl.trustStorePassword=changeit ...
   curl:                  curl --cacert %[1]s ...   or CURL_CA_BUNDLE=%[1]s

   Then point the client at the gateway: HTTPS_PROXY=http://GATEWAY:PORT

Anyone holding the key can impersonate every host the clients trusting this
CA talk to through the gateway: keep it at 0600, in Vault if you can.
`, cert, key)
}

func absOr(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
