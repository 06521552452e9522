//! The emulator's own certificate authority and the rustls server configuration built on it.
//!
//! A fresh CA is generated at every start (rcgen); its leaf covers every QQ host name served
//! plus `*.qq.com`, `*.web2.qq.com`, `*.ptlogin2.qq.com`, `localhost` and `127.0.0.1`. Clients
//! trust [`TlsMaterial::ca_pem`].

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::emulator::router::HOSTS;

/// Why the TLS material could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("tls configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The CA certificate and a ready server configuration.
#[derive(Clone)]
pub(crate) struct TlsMaterial {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The rustls configuration for the TLS listener.
    pub config: Arc<ServerConfig>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial").finish_non_exhaustive()
    }
}

/// Every name the leaf certificate is valid for.
pub(crate) fn leaf_names() -> Vec<String> {
    let mut names: Vec<String> = HOSTS.iter().map(|h| (*h).to_owned()).collect();
    for extra in [
        "qq.com",
        "*.qq.com",
        "*.web2.qq.com",
        "*.ptlogin2.qq.com",
        "*.qun.qq.com",
        "*.ftn.qq.com",
        "localhost",
        "127.0.0.1",
    ] {
        names.push(extra.to_owned());
    }
    names
}

impl TlsMaterial {
    /// Generates a CA and a leaf signed by it. CPU work of a few milliseconds.
    pub(crate) fn generate() -> Result<TlsMaterial, TlsError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "qqbridge WebQQ emulator CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key)?;

        let leaf_key = KeyPair::generate()?;
        let mut leaf_params = CertificateParams::new(leaf_names())?;
        leaf_params.distinguished_name.push(DnType::CommonName, "w.qq.com");
        let leaf = leaf_params.signed_by(&leaf_key, &ca)?;

        let chain = vec![leaf.der().clone(), CertificateDer::from(ca.der().to_vec())];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        // hyper is built with HTTP/1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsMaterial { ca_pem: ca.pem(), config: Arc::new(config) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_generate_ca_and_leaf() {
        let m = TlsMaterial::generate().unwrap();
        assert!(m.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(leaf_names().iter().any(|n| n == "d1.web2.qq.com"));
        assert!(leaf_names().iter().any(|n| n == "*.qq.com"));
    }
}
