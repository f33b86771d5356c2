//! A throwaway certificate authority for TLS tests: a CA, server certificates for
//! `localhost`/127.0.0.1 and client certificates it signs, all as PEM.

/// A CA and certificates it signs, as PEM.
pub struct Pki {
    pub ca: rcgen::Issuer<'static, rcgen::KeyPair>,
    pub ca_pem: String,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let certificate = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: certificate.pem(),
            ca: rcgen::Issuer::new(params, key),
        }
    }

    /// (certificate PEM, key PEM) for a server at 127.0.0.1 or a client named `name`.
    pub fn leaf(&self, name: &str, client: bool) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(if client {
            vec![]
        } else {
            vec!["localhost".to_owned()]
        })
        .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        if !client {
            params
                .subject_alt_names
                .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        }
        params.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        let certificate = params.signed_by(&key, &self.ca).unwrap();
        (certificate.pem(), key.serialize_pem())
    }
}
