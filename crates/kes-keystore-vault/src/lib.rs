//! HashiCorp Vault / OpenBao keystore (work in progress).
