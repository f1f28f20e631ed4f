use super::*;

use crate::auth::jwk::tests::fixture;
use jsonwebtoken::Algorithm;

/// A copy of a fixture in a fresh temporary file, to be rewritten by the test.
fn scratch(fixture_name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("pg-jwks-{}.json", crate::domain::new_id()));
    std::fs::copy(fixture(fixture_name), &path).unwrap();
    path
}

/// A set loaded from a scratch copy of the fixture JWKS, re-read at most once per `interval`.
async fn scratch_set(interval: Duration) -> (PathBuf, Arc<Jwks>) {
    scratch_set_aged(interval, MAX_AGE).await
}

/// The same, with a maximum age of `max_age`.
async fn scratch_set_aged(interval: Duration, max_age: Duration) -> (PathBuf, Arc<Jwks>) {
    let path = scratch("jwks.json");
    let jwks = Jwks::load_with(JwksSource::File(path.clone()), interval, max_age)
        .await
        .unwrap();
    (path, Arc::new(jwks))
}

async fn lookups(jwks: &Arc<Jwks>, kid: &str, n: usize) -> usize {
    let found = futures::future::join_all((0..n).map(|_| jwks.key(kid))).await;
    found.iter().filter(|k| k.is_some()).count()
}

#[tokio::test]
async fn the_fixture_set_binds_each_key_to_its_algorithm() {
    let jwks = Arc::new(
        Jwks::load(JwksSource::File(fixture("jwks.json")))
            .await
            .unwrap(),
    );
    assert_eq!(jwks.len(), 3);
    for (kid, algorithm) in [
        ("rsa-1", Algorithm::RS256),
        ("ec-1", Algorithm::ES256),
        ("ed-1", Algorithm::EdDSA),
    ] {
        assert_eq!(jwks.key(kid).await.unwrap().algorithm, algorithm, "{kid}");
    }
}

#[tokio::test]
async fn a_set_that_cannot_be_used_is_an_error() {
    let path = scratch("jwks.json");
    for (contents, expected) in [
        ("{\"keys\": []}", "no usable key"),
        (
            "{\"keys\": [{\"kty\": \"oct\", \"kid\": \"a\", \"k\": \"c2VjcmV0\"}]}",
            "oct",
        ),
        ("[]", "not a JWKS"),
        ("not json", "not a JWKS"),
    ] {
        std::fs::write(&path, contents).unwrap();
        let error = Jwks::load(JwksSource::File(path.clone()))
            .await
            .err()
            .unwrap();
        assert!(error.contains(expected), "{contents}: {error}");
    }
    std::fs::remove_file(&path).unwrap();
    let error = Jwks::load(JwksSource::File(path)).await.err().unwrap();
    assert!(error.contains("cannot read the file"), "{error}");
}

#[tokio::test]
async fn unknown_kids_reread_once_per_interval_and_one_at_a_time() {
    let interval = Duration::from_millis(400);
    let (path, jwks) = scratch_set(interval).await;
    let reads = || jwks.reads.load(Ordering::Relaxed);
    assert_eq!(reads(), 1, "read at start");

    // Inside the interval since the start: no read at all, however many bogus kids.
    assert_eq!(lookups(&jwks, "bogus", 50).await, 0);
    assert_eq!(reads(), 1);

    // After it: 50 concurrent lookups of an unknown kid cause one read between them.
    tokio::time::sleep(interval).await;
    assert_eq!(lookups(&jwks, "bogus", 50).await, 0);
    assert_eq!(reads(), 2, "single flight");

    // A rotated-in key is found by the first lookup after the interval.
    std::fs::copy(fixture("jwks-rotated.json"), &path).unwrap();
    assert_eq!(lookups(&jwks, "rsa-next", 1).await, 0, "still rate-limited");
    tokio::time::sleep(interval).await;
    assert_eq!(lookups(&jwks, "rsa-next", 50).await, 50);
    assert_eq!(reads(), 3);
    assert_eq!(jwks.len(), 4);
    // Known kids never cause a read.
    assert_eq!(lookups(&jwks, "rsa-1", 50).await, 50);
    assert_eq!(reads(), 3);
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test]
async fn a_failed_reread_keeps_the_keys_already_known() {
    let interval = Duration::from_millis(200);
    let (path, jwks) = scratch_set(interval).await;
    for broken in [Some("{\"keys\": ["), Some("{\"keys\": []}"), None] {
        match broken {
            Some(contents) => std::fs::write(&path, contents).unwrap(),
            None => std::fs::remove_file(&path).unwrap(),
        }
        tokio::time::sleep(interval).await;
        let before = jwks.reads.load(Ordering::Relaxed);
        assert!(jwks.key("unknown").await.is_none());
        assert_eq!(jwks.reads.load(Ordering::Relaxed), before + 1, "{broken:?}");
        assert!(jwks.key("rsa-1").await.is_some(), "{broken:?}");
        assert_eq!(jwks.len(), 3);
    }
}

#[tokio::test]
async fn a_set_past_its_age_is_reread_so_removed_keys_stop_verifying() {
    let max_age = Duration::from_millis(300);
    let (path, jwks) = scratch_set_aged(Duration::from_secs(3600), max_age).await;
    let reads = || jwks.reads.load(Ordering::Relaxed);
    assert!(jwks.key("rsa-1").await.is_some());
    assert_eq!(reads(), 1, "young: no re-read");
    // The backend drops rsa-1 (only ec-1 and ed-1 are left).
    let mut set: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    set["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|k| k["kid"] != "rsa-1");
    std::fs::write(&path, set.to_string()).unwrap();
    tokio::time::sleep(max_age).await;
    // The lookup that finds the set old still answers with what it has, and re-reads it
    // in the background; once that is done the removed key is gone.
    assert!(jwks.key("rsa-1").await.is_some());
    let deadline = Instant::now() + Duration::from_secs(5);
    while jwks.len() != 2 {
        assert!(Instant::now() < deadline, "no background re-read");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(reads(), 2);
    assert!(
        jwks.key("rsa-1").await.is_none(),
        "a removed key stops verifying"
    );
    assert!(jwks.key("ec-1").await.is_some());
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test]
async fn a_huge_file_is_refused_without_reading_it_all() {
    let error = Jwks::load(JwksSource::File("/dev/zero".into()))
        .await
        .err()
        .unwrap();
    assert!(error.contains("larger than"), "{error}");
}

#[test]
fn urls_are_shown_without_credentials() {
    let source =
        JwksSource::parse("https://user:pw@auth.example.com:8443/jwks.json?token=s3cret").unwrap();
    assert_eq!(
        source.to_string(),
        "https://auth.example.com:8443/jwks.json"
    );
}

#[test]
fn sources_are_files_or_https_urls() {
    assert_eq!(
        JwksSource::parse("/etc/jwks.json"),
        Ok(JwksSource::File("/etc/jwks.json".into()))
    );
    assert!(matches!(
        JwksSource::parse("https://auth.example.com/.well-known/jwks.json"),
        Ok(JwksSource::Url(_))
    ));
    for refused in [
        "http://auth.example.com/jwks.json",
        "file:///etc/jwks.json",
        "https://",
    ] {
        assert!(JwksSource::parse(refused).is_err(), "{refused}");
    }
}
