#!/usr/bin/env bash
# Regenerates the test PKI used by the integration tests. The files are committed so that tests
# never depend on the clock of the day they were made (validity: 100 years).
#   ca.{crt,key}          a test CA (Ed25519)
#   server.{crt,key}      server certificate for 127.0.0.1 / localhost, signed by the CA
#   nosan.{crt,key}       a server certificate without any SAN (must be refused at startup)
#   admin.{crt,key}       client certificate of the admin identity, signed by the CA
#   app.{crt,key}         client certificate of an ordinary identity, signed by the CA
#   other.{crt,key}       a self-signed client certificate (CA:FALSE) not known to any policy
set -euo pipefail
cd "$(dirname "$0")"
days=36500
ext_client="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
ext_server="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.0.1,DNS:localhost"
ext_nosan="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth"

openssl genpkey -algorithm ed25519 -out ca.key
openssl req -x509 -new -key ca.key -days "$days" -subj "/CN=kes test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt

issue() { # name cn extensions
  openssl genpkey -algorithm ed25519 -out "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
    -days "$days" -extfile "$1.ext" -out "$1.crt"
  rm -f "$1.csr" "$1.ext"
}
issue server localhost "$ext_server"
issue nosan nosan "$ext_nosan"
issue admin admin "$ext_client"
issue app app "$ext_client"

openssl genpkey -algorithm ed25519 -out other.key
printf '%s\n' "$ext_client" > other.ext
openssl req -x509 -new -key other.key -days "$days" -subj "/CN=other" -extensions v3 \
  -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n[v3]\n%s\n' "$ext_client") -out other.crt
rm -f other.ext
chmod 0644 ./*.crt
chmod 0600 ./*.key
