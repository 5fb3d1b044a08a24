//! Quick start: create a key, get a data key for an object, and decrypt it again.
//!
//! Start a development server (`kes server --dev`), then run
//!
//! ```text
//! KES_SERVER=127.0.0.1:7373 KES_API_KEY=kes:v1:… KES_INSECURE=1 \
//!     cargo run -p kes-client --example quickstart
//! ```
//!
//! Environment: `KES_SERVER` (comma-separated endpoints, default `127.0.0.1:7373`),
//! `KES_API_KEY` (required), `KES_CA` (a CA certificate file to trust, optional),
//! `KES_INSECURE=1` (accept any server certificate, as `--dev` servers use self-signed ones).

use std::process::ExitCode;

use kes_client::{ApiKey, Client, Error};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let servers = std::env::var("KES_SERVER").unwrap_or_else(|_| "127.0.0.1:7373".into());
    let api_key = std::env::var("KES_API_KEY").map_err(|_| "KES_API_KEY is not set")?;
    let api_key = ApiKey::parse(&api_key)?;
    println!("identity: {}", api_key.identity());

    let mut builder = Client::builder()
        .endpoints(servers.split(',').map(str::trim))
        .api_key(api_key)
        .danger_accept_invalid_certs(std::env::var("KES_INSECURE").is_ok_and(|v| v == "1"));
    if let Ok(ca) = std::env::var("KES_CA") {
        builder = builder.ca_file(ca);
    }
    let client = builder.build()?;

    let version = client.version().await?;
    println!("server version: {}", version.version);

    // Creating a key that exists is not an error for this program.
    match client.create_key("quickstart-key").await {
        Ok(()) => println!("created key 'quickstart-key'"),
        Err(Error::KeyExists) => println!("key 'quickstart-key' exists already"),
        Err(err) => return Err(err.into()),
    }

    // A data key bound to the object it protects.
    let context = b"my-bucket/my-object";
    let dek = client.generate_key("quickstart-key", context).await?;
    println!("data key ciphertext: {} bytes", dek.ciphertext.len());

    // Later: recover the data key from its ciphertext.
    let plaintext = client
        .decrypt("quickstart-key", &dek.ciphertext, context)
        .await?;
    assert_eq!(plaintext, dek.plaintext);
    println!("decrypted the data key again ({} bytes)", plaintext.len());

    // The wrong context is rejected.
    match client
        .decrypt("quickstart-key", &dek.ciphertext, b"other")
        .await
    {
        Err(Error::DecryptionFailed) => println!("a wrong context is rejected, as it should be"),
        other => return Err(format!("unexpected result: {other:?}").into()),
    }
    Ok(())
}
