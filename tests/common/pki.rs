//! A certificate authority for one test, made with the `openssl` command (`make test` installs
//! it): server certificates for loopback, client certificates with a subject and URI SANs.

use super::{backends_for, free_port, gateway_yaml, spawn, temp_dir, Ports, Proc, BACKEND_SECRET};
use std::path::{Path, PathBuf};

pub struct TestCa {
    pub dir: PathBuf,
    /// The CA certificate, PEM.
    pub cert: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed by `make test`");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate and its key, PEM files.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Issued {
    pub fn cert_str(&self) -> String {
        self.cert.display().to_string()
    }
    pub fn key_str(&self) -> String {
        self.key.display().to_string()
    }

    /// A listener's `tls:` value serving this pair, with `extra` settings (`, client_auth: …`).
    pub fn tls_yaml(&self, extra: &str) -> String {
        format!(
            "{{cert_file: \"{}\", key_file: \"{}\"{extra}}}",
            self.cert_str(),
            self.key_str()
        )
    }
}

impl TestCa {
    /// A new CA named `name` in a fresh directory.
    pub fn new(name: &str) -> TestCa {
        let dir = super::proc::temp_dir();
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        );
        TestCa {
            cert: dir.join("ca.pem"),
            dir,
        }
    }

    pub fn cert_str(&self) -> String {
        self.cert.display().to_string()
    }

    /// A certificate for `subject` (e.g. `/CN=127.0.0.1`) with the extensions in `ext` (e.g.
    /// `subjectAltName=IP:127.0.0.1`), signed by this CA, in files named after `file`.
    pub fn issue(&self, file: &str, subject: &str, ext: &str) -> Issued {
        let (key, csr, pem, cnf) = (
            format!("{file}.key"),
            format!("{file}.csr"),
            format!("{file}.pem"),
            format!("{file}.cnf"),
        );
        openssl(
            &self.dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                subject,
                "-keyout",
                &key,
                "-out",
                &csr,
            ],
        );
        std::fs::write(
            self.dir.join(&cnf),
            format!("basicConstraints=CA:FALSE\n{ext}\n"),
        )
        .unwrap();
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &cnf,
                "-out",
                &pem,
            ],
        );
        Issued {
            cert: self.dir.join(pem),
            key: self.dir.join(key),
        }
    }

    /// A server certificate for 127.0.0.1 and localhost.
    pub fn server(&self, file: &str) -> Issued {
        self.issue(
            file,
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth",
        )
    }
}

/// A gateway (the usual test configuration, `mock_port` as its backend) whose admin plane speaks
/// TLS with `pair`; returns it with its consumer and admin ports.
pub fn gateway_with_admin_tls(pair: &Issued, mock_port: u16) -> (Proc, u16, u16) {
    let (port, admin_port) = (free_port(), free_port());
    let dir = temp_dir();
    let yaml = gateway_yaml(
        &Ports { port, admin_port },
        &dir,
        &backends_for(mock_port),
        "",
        "",
        "",
    )
    .replace(
        "  admin:\n",
        &format!("  admin:\n    tls: {}\n", pair.tls_yaml("")),
    );
    let path = dir.join("tollgate.yaml");
    std::fs::write(&path, yaml).unwrap();
    let gw = spawn(
        &["run", "-c", &path.display().to_string()],
        &[("TG_TEST_BACKEND_KEY", BACKEND_SECRET)],
    );
    (gw, port, admin_port)
}
