//! A team's presence rows (availability and agent sockets) and their keyset pages.

use super::*;

async fn presence_rows_follow_availability_and_agent_sockets(engine: Engine) {
    let fx = fixture_with(engine, FAST).await;
    let alice = fx.mate("alice", "agent").await;
    let team = fx.create_team("Live").await;
    fx.add(&team, &[&alice.user.id, &fx.owner.id]).await;

    let rows = fx.presence_rows(&team).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r["userId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        sorted(vec![alice.user.id.clone(), fx.owner.id.clone()]),
        "ordered by user id"
    );
    for row in &rows {
        let mut fields: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(fields, PRESENCE_FIELDS, "{row}");
        assert_timestamp(&row["requestTime"], "requestTime");
        assert_eq!(row["presenceStatus"], json!("Working"), "{row}");
        assert_eq!(row["connectionStatus"], json!("Offline"), "{row}");
        assert_eq!(row["activeChannels"], json!([]), "{row}");
    }

    // presenceStatus follows user_available.
    fx.update_teammate(&alice.puid, json!({"user_available": false}))
        .await;
    let row = fx.row(&team, &alice.user.id).await;
    assert_eq!(row["presenceStatus"], json!("Away"), "{row}");
    assert_eq!(row["connectionStatus"], json!("Offline"), "{row}");
    fx.update_teammate(&alice.puid, json!({"user_available": true}))
        .await;
    assert_eq!(
        fx.row(&team, &alice.user.id).await["presenceStatus"],
        json!("Working")
    );

    // connectionStatus and activeChannels follow real sockets.
    let mobile = fx
        .app
        .ws(&format!(
            "{}&channel=mobile",
            token_query(&alice.user.token)
        ))
        .await;
    let web = fx.app.ws(&token_query(&alice.user.token)).await;
    let watching = fx.observer(&fx.owner.token).await;
    let row = fx
        .wait_row(&team, &alice.user.id, |r| {
            r["connectionStatus"] == json!("Online") && channels(r) == ["mobile", "web"]
        })
        .await;
    assert_eq!(row["presenceStatus"], json!("Working"), "{row}");
    assert_timestamp(&row["lastSeen"], "lastSeen while online");
    // An observing socket does not count.
    let owner_row = fx.row(&team, &fx.owner.id).await;
    assert_eq!(
        owner_row["connectionStatus"],
        json!("Offline"),
        "{owner_row}"
    );
    assert_eq!(owner_row["activeChannels"], json!([]), "{owner_row}");

    // Availability and connection are independent.
    fx.update_teammate(&alice.puid, json!({"user_available": false}))
        .await;
    let row = fx.row(&team, &alice.user.id).await;
    assert_eq!(row["presenceStatus"], json!("Away"), "{row}");
    assert_eq!(row["connectionStatus"], json!("Online"), "{row}");

    mobile.close().await;
    let row = fx
        .wait_row(&team, &alice.user.id, |r| channels(r) == ["web"])
        .await;
    assert_eq!(row["connectionStatus"], json!("Online"), "{row}");

    web.close().await;
    let row = fx
        .wait_row(&team, &alice.user.id, |r| {
            r["connectionStatus"] == json!("Offline")
        })
        .await;
    assert_eq!(row["activeChannels"], json!([]), "{row}");
    assert_eq!(row["presenceStatus"], json!("Away"), "{row}");
    assert_timestamp(&row["lastSeen"], "lastSeen after going offline");
    watching.close().await;
}

async fn presence_paging_parameters_are_validated(engine: Engine) {
    let fx = fixture(engine).await;
    let team = fx.create_team("Paged").await;
    fx.add(&team, &[&fx.owner.id]).await;
    let base = format!("/beta/teams/{team}/presence");

    for limit in ["0", "1001", "abc", "-1", "1.5", "99999999999999999999"] {
        let resp = fx
            .app
            .get(&format!("{base}?pageLimit={limit}"), &fx.admin_key)
            .await;
        assert_invalid(
            resp,
            "query parameter pageLimit",
            &format!("pageLimit={limit}"),
        );
    }
    let not_json = URL_SAFE_NO_PAD.encode(b"not json");
    let wrong_shape = URL_SAFE_NO_PAD.encode(br#"{"after":"not-a-uuid"}"#);
    let array = URL_SAFE_NO_PAD.encode(b"[]");
    for key in [
        "garbage!!",
        "abc",
        "%%%",
        not_json.as_str(),
        wrong_shape.as_str(),
        array.as_str(),
    ] {
        let resp = fx
            .app
            .get(&format!("{base}?pageKey={key}"), &fx.admin_key)
            .await;
        assert_invalid(resp, "query parameter pageKey", &format!("pageKey={key}"));
    }
    for limit in ["1", "1000"] {
        let page = fx.presence_page(&format!("{base}?pageLimit={limit}")).await;
        assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
        assert!(page["meta"].is_object(), "{page}");
        assert!(page["meta"].get("next").is_none(), "{page}");
    }
}

async fn the_default_presence_page_holds_at_most_fifty(engine: Engine) {
    let fx = fixture(engine).await;
    let mates = fx.mates(51).await;
    let team = fx.create_team("Crowd").await;
    let mut ids: Vec<&str> = mates.iter().map(|m| m.user.id.as_str()).collect();
    ids.push(&fx.owner.id);
    fx.add(&team, &ids).await;
    let all = sorted(ids.iter().map(|s| s.to_string()).collect());
    assert_eq!(all.len(), 52);

    let first = fx
        .presence_page(&format!("/beta/teams/{team}/presence"))
        .await;
    let rows = first["data"].as_array().unwrap();
    assert_eq!(rows.len(), 50, "the default page");
    let next = first["meta"]["next"].as_str().expect("a next page");
    let second = fx.presence_page(next).await;
    assert!(second["meta"].get("next").is_none(), "{second}");
    let walked: Vec<String> = rows
        .iter()
        .chain(second["data"].as_array().unwrap())
        .map(|r| r["userId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(walked, all, "every member once, by user id");

    // A last page that is exactly full has no empty page after it.
    let half = fx
        .presence_page(&format!("/beta/teams/{team}/presence?pageLimit=26"))
        .await;
    assert_eq!(half["data"].as_array().unwrap().len(), 26);
    let rest = fx
        .presence_page(half["meta"]["next"].as_str().expect("a second half"))
        .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 26);
    assert!(rest["meta"].get("next").is_none(), "{rest}");
    assert_eq!(fx.presence_rows(&team).await.len(), 52);
}

async fn presence_pages_stay_stable_while_members_change(engine: Engine) {
    let fx = fixture(engine).await;
    // Nine teammates, sorted by user id: t0 joins late before the boundary of page 1, t7 joins
    // late after it, the other seven are members from the start.
    let mut mates = fx.mates(9).await;
    mates.sort_by(|a, b| a.user.id.cmp(&b.user.id));
    let id = |i: usize| mates[i].user.id.clone();
    let team = fx.create_team("Stable").await;
    let initial: Vec<String> = [1, 2, 3, 4, 5, 6, 8].into_iter().map(id).collect();
    let initial_refs: Vec<&str> = initial.iter().map(String::as_str).collect();
    fx.add(&team, &initial_refs).await;

    let first = fx
        .presence_page(&format!("/beta/teams/{team}/presence?pageLimit=3"))
        .await;
    let first_rows: Vec<String> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(first_rows, vec![id(1), id(2), id(3)], "page 1 by user id");
    let mut next = first["meta"]["next"]
        .as_str()
        .expect("a next page")
        .to_string();
    let prefix = format!("/beta/teams/{team}/presence?pageKey=");
    assert!(next.starts_with(&prefix), "relative next URL: {next}");
    assert!(next.ends_with("&pageLimit=3"), "keeps the limit: {next}");

    // Between pages: t0 joins before the boundary, t2 (already shown) leaves, t7 joins later on.
    fx.add(&team, &[&id(0), &id(7)]).await;
    fx.remove(&team, &[&id(2)]).await;

    let mut walked = first_rows.clone();
    let mut pages = 1;
    loop {
        let page = fx.presence_page(&next).await;
        pages += 1;
        let rows = page["data"].as_array().unwrap();
        assert!(!rows.is_empty(), "no empty page: {page}");
        assert!(rows.len() <= 3, "{page}");
        walked.extend(
            rows.iter()
                .map(|r| r["userId"].as_str().unwrap().to_string()),
        );
        match page["meta"].get("next") {
            Some(n) => {
                next = n.as_str().expect("next is a string").to_string();
                assert!(next.starts_with(&prefix), "{next}");
                assert!(next.ends_with("&pageLimit=3"), "{next}");
            }
            None => break,
        }
        assert!(pages < 10, "the walk ends");
    }

    let unique: HashSet<&String> = walked.iter().collect();
    assert_eq!(unique.len(), walked.len(), "no duplicates in {walked:?}");
    for always in [1, 3, 4, 5, 6, 8] {
        assert!(
            walked.contains(&id(always)),
            "t{always} was a member throughout: {walked:?}"
        );
    }
    assert!(
        walked.contains(&id(7)),
        "a member who joined after the boundary is reached: {walked:?}"
    );
    assert!(
        !walked.contains(&id(0)),
        "t0 sorts before the boundary: {walked:?}"
    );
    assert_eq!(
        walked,
        vec![id(1), id(2), id(3), id(4), id(5), id(6), id(7), id(8)]
    );
    // Page size can change between requests: the same key with a bigger limit.
    let bigger = next.replace("pageLimit=3", "pageLimit=10");
    let tail = fx.presence_page(&bigger).await;
    assert!(tail["meta"].get("next").is_none(), "{tail}");
    // A fresh walk shows the team as it is now.
    let now: Vec<String> = fx
        .presence_rows(&team)
        .await
        .iter()
        .map(|r| r["userId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        now,
        vec![id(0), id(1), id(3), id(4), id(5), id(6), id(7), id(8)]
    );
}

engine_tests!(
    presence_rows_follow_availability_and_agent_sockets,
    presence_paging_parameters_are_validated,
    the_default_presence_page_holds_at_most_fifty,
    presence_pages_stay_stable_while_members_change,
);
