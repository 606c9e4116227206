//! Tests of `[organisation]` (who is on duty when, in which time zone, the
//! spelling of shifts) and of the mistakes both tables name.

use super::*;
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

const ORG: &str = r#"
[[villages]]
name = "东村"
grids = ["一网格", "二网格"]

[[officers]]
id = "day"
name = "白班"
phone = "13800000001"

[[officers]]
id = "night"
name = "夜班"

[[officers]]
id = "grid1"
name = "网格员"

[[officers]]
id = "boss"
name = "带班领导"

[[roster]]
officer = "day"
villages = ["东村"]
from = "08:00"
to = "20:00"

[[roster]]
officer = "night"
villages = ["东村"]
from = "20:00"
to = "08:00"

[[roster]]
officer = "grid1"
grids = ["一网格"]
days = "mon-fri"

[[duty_leaders]]
officer = "boss"
"#;

fn org() -> Organisation {
    org_in(chrono_tz::Asia::Shanghai)
}

fn org_in(tz: Tz) -> Organisation {
    Organisation::parse(&ORG.parse::<toml::Table>().unwrap(), tz).unwrap()
}

/// A Beijing local time.
fn bj(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    local(chrono_tz::Asia::Shanghai, d, h, m)
}

/// A local time in May 2024 (2024-05-01 is a Wednesday).
fn local(tz: Tz, d: u32, h: u32, m: u32) -> DateTime<Utc> {
    tz.with_ymd_and_hms(2024, 5, d, h, m, 0)
        .unwrap()
        .with_timezone(&Utc)
}

fn ids(v: Vec<&Officer>) -> Vec<&str> {
    v.into_iter().map(|o| o.id.as_str()).collect()
}

#[test]
fn the_grid_officer_comes_first_then_the_village_roster_by_beijing_time() {
    let o = org();
    // 2024-05-01 is a Wednesday.
    assert_eq!(
        ids(o.on_duty_for(Some("东村"), Some("一网格"), bj(1, 10, 0))),
        ["grid1"]
    );
    // Saturday: the grid officer is off; the village's day shift.
    assert_eq!(
        ids(o.on_duty_for(Some("东村"), Some("一网格"), bj(4, 10, 0))),
        ["day"]
    );
    assert_eq!(
        ids(o.on_duty_for(Some("东村"), Some("二网格"), bj(1, 19, 59))),
        ["day"]
    );
    // The night shift runs past midnight.
    assert_eq!(
        ids(o.on_duty_for(Some("东村"), None, bj(1, 20, 0))),
        ["night"]
    );
    assert_eq!(
        ids(o.on_duty_for(Some("东村"), None, bj(2, 3, 0))),
        ["night"]
    );
    assert_eq!(ids(o.on_duty_for(Some("东村"), None, bj(2, 8, 0))), ["day"]);
    assert!(o.on_duty_for(Some("西村"), None, bj(1, 10, 0)).is_empty());
    assert_eq!(ids(o.leaders_at(bj(2, 3, 0))), ["boss"]);
}

#[test]
fn the_roster_reads_shifts_in_the_configured_time_zone() {
    // Xinjiang's local time (UTC+6): 23:00 on Wednesday is 01:00 Thursday
    // in Beijing. A hard-coded UTC+8 would pick the wrong shift.
    let o = org_in(chrono_tz::Asia::Urumqi);
    let at = local(chrono_tz::Asia::Urumqi, 1, 23, 0);
    assert_eq!(ids(o.on_duty_for(Some("东村"), None, at)), ["night"]);
    // 07:00 is still the night shift (it ends at 08:00 local) ...
    let at = local(chrono_tz::Asia::Urumqi, 2, 7, 0);
    assert_eq!(ids(o.on_duty_for(Some("东村"), None, at)), ["night"]);
    // ... although it is 09:00 in Beijing, the day shift there.
    assert_eq!(ids(org().on_duty_for(Some("东村"), None, at)), ["day"]);
    // A site on UTC: Friday 23:30 is Saturday in Beijing, where the grid
    // officer (mon-fri, all day) is off; here it is still Friday.
    let o = org_in(chrono_tz::UTC);
    let at = local(chrono_tz::UTC, 3, 23, 30);
    assert_eq!(
        ids(o.on_duty_for(Some("东村"), Some("一网格"), at)),
        ["grid1"]
    );
    assert_eq!(
        ids(org().on_duty_for(Some("东村"), Some("一网格"), at)),
        ["night"]
    );
}

#[test]
fn a_list_of_days_names_the_field_and_the_string_to_write() {
    let e = org_err((
        "days = \"mon-fri\"",
        "days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]",
    ));
    assert!(
        e.contains("roster")
            && e.contains("grid1")
            && e.contains("`days`")
            && e.contains("write days = \"mon-fri\""),
        "{e}"
    );
    let e = org_err(("days = \"mon-fri\"", "days = \"weekdays\""));
    assert!(e.contains("`days`") && e.contains("weekdays"), "{e}");
    let e = org_err((
        "officer = \"boss\"",
        "officer = \"boss\"\nvillages = [\"东村\"]",
    ));
    assert!(e.contains("duty_leaders") && e.contains("villages"), "{e}");
}

#[test]
fn shifts_show_in_the_configuration_spelling() {
    let v = serde_json::to_value(org()).unwrap();
    let grid1 = &v["roster"][2];
    assert_eq!(
        (&grid1["days"], &grid1["from"], &grid1["to"]),
        (
            &serde_json::json!("mon-fri"),
            &serde_json::json!("00:00"),
            &serde_json::json!("24:00")
        )
    );
    assert_eq!(v["roster"][1]["from"], "20:00");
}

fn org_err(replace: (&str, &str)) -> String {
    let text = ORG.replace(replace.0, replace.1);
    Organisation::parse(
        &text.parse::<toml::Table>().unwrap(),
        chrono_tz::Asia::Shanghai,
    )
    .unwrap_err()
    .to_string()
}

#[test]
fn mistakes_are_named() {
    let e = org_err(("officer = \"night\"", "officer = \"nobody\""));
    assert!(
        e.contains("roster") && e.contains("nobody") && e.contains("officer"),
        "{e}"
    );
    let e = org_err(("to = \"08:00\"", "to = \"8am\""));
    assert!(e.contains("`to`") && e.contains("8am"), "{e}");
    let e = org_err(("grids = [\"一网格\"]\ndays", "grids = [\"三网格\"]\ndays"));
    assert!(e.contains("三网格"), "{e}");
    let e = org_err(("phone = \"13800000001\"", "phone = \"1380\"\nemail = \"x\""));
    assert!(e.contains("email") && e.contains("day"), "{e}");

    let org = org();
    let alerts = |t: &str| {
        AlertsConfig::parse(
            &t.parse::<toml::Table>().unwrap(),
            &org,
            "http://127.0.0.1:8080",
        )
        .map(|_| ())
        .unwrap_err()
        .to_string()
    };
    let e =
        alerts("[[channels]]\nname = \"h\"\ntype = \"webhook\"\nurl = \"http://x\"\nkey = \"k\"\n");
    assert!(e.contains("`key`") && e.contains("webhook"), "{e}");
    let e = alerts("[[channels]]\nname = \"h\"\ntype = \"pager\"\n");
    assert!(e.contains("pager"), "{e}");
    let e = alerts("[[routes]]\nkinds = [\"crowd\"]\nchannels = [\"nope\"]\n");
    assert!(e.contains("routes") && e.contains("nope"), "{e}");
    let e = alerts(
        "[[channels]]\nname = \"w\"\ntype = \"wecom\"\nkey_env = \"XL_TEST_UNSET_VARIABLE\"\n",
    );
    assert!(e.contains("XL_TEST_UNSET_VARIABLE"), "{e}");
    let e = alerts("retry_initail_s = 1\n");
    assert!(e.contains("retry_initail_s"), "{e}");
}
