#!/usr/bin/env bash
# Makes the sample used by `npm start` until the server exists: a root CA, an
# intermediate and a leaf for www.example.com (ECDSA P-256, ten years), as one PEM
# bundle in the wrong order to show that `inspect` orders it. Re-run to refresh.
set -euo pipefail
cd "$(dirname "$0")"
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$t/root.key" \
  -subj "/O=certkeeper samples/CN=Sample Root CA" -days 3650 -out "$t/root.pem" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$t/int.key" \
  -subj "/O=certkeeper samples/CN=Sample Intermediate CA" -out "$t/int.csr"
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' > "$t/int.ext"
openssl x509 -req -in "$t/int.csr" -CA "$t/root.pem" -CAkey "$t/root.key" -CAcreateserial \
  -days 3650 -extfile "$t/int.ext" -out "$t/int.pem"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout example.com.key \
  -subj "/CN=www.example.com" -out "$t/leaf.csr"
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:www.example.com,DNS:example.com\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' > "$t/leaf.ext"
openssl x509 -req -in "$t/leaf.csr" -CA "$t/int.pem" -CAkey "$t/int.key" -CAcreateserial \
  -days 3650 -extfile "$t/leaf.ext" -out "$t/leaf.pem"
cat "$t/root.pem" "$t/leaf.pem" "$t/int.pem" > example.com-chain.pem
