//! What a superior platform asks of us (cascade, see [`super::upstream`]):
//! MESSAGE Query Catalog, DeviceInfo and DeviceStatus for our platform id,
//! and RecordInfo for a channel ([`super::record_info`]).
//! The query gets its 200 at once; the answer follows in MESSAGEs of our
//! own, the catalog in chunks, each sent after the previous one's 200.
//!
//! The catalog is a tree: the township as a business group (业务分组, type
//! 215), its villages and their grids as virtual organisations (虚拟组织,
//! type 216), and the shared cameras under their grid (or village, or the
//! group). Ids are 20 digits: the first 10 of our local id (centre and
//! industry code), the type code, our local id's 14th digit (network), and
//! a 6-digit number from a hash of the name (villages 000001-499999, grids
//! 500000-999999) or of the camera id (cameras, type 131). A collision
//! takes the next free number, in key order. A `gb28181://` camera keeps
//! its channel id.

use super::charset;
use super::manscdp::{self, element, Root};
use super::message::Message;
use super::record_info::{record_bodies, RecordQuery};
use super::registrar::gb_date;
use super::server::{Reply, Shared};
use super::transport::Peer;
use super::upstream::Link;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use tracing::{debug, info, warn};
use xueliang_core::config::gb28181::Gb28181Upstream;
use xueliang_core::gb28181::{CameraTrouble, CascadeCamera};

/// A superior's query, answered after its 200.
pub struct UpstreamQuery {
    pub link: Arc<Link>,
    pub kind: QueryKind,
    pub sn: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryKind {
    Catalog,
    DeviceInfo,
    DeviceStatus,
    /// The event clips of a channel (its query read and checked).
    RecordInfo(RecordQuery),
}

/// One item of the catalog we give.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogItem {
    pub id: String,
    pub name: String,
    pub node: Node,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// The top: 业务分组 (215).
    Group,
    /// A village or a grid: 虚拟组织 (216).
    Organisation { parent: String, group: String },
    Camera {
        /// The camera's own id (what an INVITE for this channel streams).
        camera: String,
        parent: String,
        group: String,
        online: bool,
        /// Told as VLOST or DEFECT to subscribers.
        trouble: Option<CameraTrouble>,
        village: Option<String>,
    },
}

/// FNV-1a, 64 bits: a hash that stays the same across builds and versions.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The numbering of one kind of node.
struct Numbering<'a> {
    prefix: &'a str,
    type_code: &'a str,
    network: char,
    low: u32,
    high: u32,
}

impl Numbering<'_> {
    fn id(&self, n: u32) -> String {
        format!("{}{}{}{n:06}", self.prefix, self.type_code, self.network)
    }

    /// Ids for `keys` (taken in sorted order), none of them in `used`.
    fn assign(
        &self,
        keys: &BTreeSet<String>,
        used: &mut HashSet<String>,
    ) -> HashMap<String, String> {
        let span = u64::from(self.high - self.low + 1);
        let mut ids = HashMap::new();
        for key in keys {
            let mut n = (fnv1a(key) % span) as u32;
            // At most `span` tries; more keys than numbers is refused upstream.
            for _ in 0..span {
                let id = self.id(self.low + n);
                if used.insert(id.clone()) {
                    ids.insert(key.clone(), id);
                    break;
                }
                n = (n + 1) % (span as u32);
            }
        }
        ids
    }
}

/// The grid key: village and grid (a grid's name is unique in its village).
fn grid_key(village: Option<&str>, grid: &str) -> String {
    format!("{}\u{1f}{grid}", village.unwrap_or_default())
}

/// The catalog `config`'s superior sees of `cameras`: the group first, then
/// villages, grids and cameras, each in a stable order.
pub fn catalog_items(config: &Gb28181Upstream, cameras: &[CascadeCamera]) -> Vec<CatalogItem> {
    let local = &config.local_id;
    let prefix = &local[..10];
    let network = local.chars().nth(13).unwrap_or('0');
    let numbering = |type_code, low, high| Numbering {
        prefix,
        type_code,
        network,
        low,
        high,
    };
    let mut shared: Vec<&CascadeCamera> = cameras
        .iter()
        .filter(|c| config.shares(&c.id, c.village.as_deref()))
        .collect();
    shared.sort_by(|a, b| a.id.cmp(&b.id));

    let group = numbering("215", 1, 1).id(1);
    let mut used: HashSet<String> = shared.iter().filter_map(|c| c.gb_channel.clone()).collect();
    used.insert(group.clone());
    let villages: BTreeSet<String> = shared.iter().filter_map(|c| c.village.clone()).collect();
    let grids: BTreeSet<String> = shared
        .iter()
        .filter_map(|c| c.grid.as_deref().map(|g| grid_key(c.village.as_deref(), g)))
        .collect();
    let camera_keys: BTreeSet<String> = shared
        .iter()
        .filter(|c| c.gb_channel.is_none())
        .map(|c| c.id.clone())
        .collect();
    let village_ids = numbering("216", 1, 499_999).assign(&villages, &mut used);
    let grid_ids = numbering("216", 500_000, 999_999).assign(&grids, &mut used);
    let camera_ids = numbering("131", 1, 999_999).assign(&camera_keys, &mut used);

    let mut items = vec![CatalogItem {
        id: group.clone(),
        name: config.group_name.clone(),
        node: Node::Group,
    }];
    for village in &villages {
        if let Some(id) = village_ids.get(village) {
            items.push(CatalogItem {
                id: id.clone(),
                name: village.clone(),
                node: Node::Organisation {
                    parent: group.clone(),
                    group: group.clone(),
                },
            });
        }
    }
    for key in &grids {
        let (village, grid) = key.split_once('\u{1f}').unwrap_or(("", key));
        let parent = village_ids.get(village).unwrap_or(&group).clone();
        if let Some(id) = grid_ids.get(key) {
            items.push(CatalogItem {
                id: id.clone(),
                name: grid.to_owned(),
                node: Node::Organisation {
                    parent,
                    group: group.clone(),
                },
            });
        }
    }
    for camera in shared {
        let id = match &camera.gb_channel {
            Some(channel) => Some(channel.clone()),
            None => camera_ids.get(&camera.id).cloned(),
        };
        let Some(id) = id else { continue };
        let parent = camera
            .grid
            .as_deref()
            .and_then(|g| grid_ids.get(&grid_key(camera.village.as_deref(), g)))
            .or_else(|| camera.village.as_ref().and_then(|v| village_ids.get(v)))
            .unwrap_or(&group)
            .clone();
        items.push(CatalogItem {
            id,
            name: camera.name.clone(),
            node: Node::Camera {
                camera: camera.id.clone(),
                parent,
                group: group.clone(),
                online: camera.online,
                trouble: camera.trouble,
                village: camera.village.clone(),
            },
        });
    }
    items
}

/// What a catalog notification (目录通知, GB/T 28181-2016 A.2.5) says of
/// an item: its `<Event>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatalogEvent {
    /// A camera started delivering video (上线), or its trouble is over.
    On,
    /// A camera stopped delivering video (离线).
    Off,
    /// A camera delivers, but without a picture (视频丢失): covered, black,
    /// frozen ([`CameraTrouble::VideoLost`]).
    VideoLost,
    /// A camera answers but cannot give usable video (故障)
    /// ([`CameraTrouble::Defect`]).
    Defect,
    /// A node is new in the catalog (增加).
    Add,
    /// A node left the catalog (删除).
    Del,
    /// A node's name, parent or address changed (更新).
    Update,
}

impl CatalogEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            CatalogEvent::On => "ON",
            CatalogEvent::Off => "OFF",
            CatalogEvent::VideoLost => "VLOST",
            CatalogEvent::Defect => "DEFECT",
            CatalogEvent::Add => "ADD",
            CatalogEvent::Del => "DEL",
            CatalogEvent::Update => "UPDATE",
        }
    }

    /// Whether the item goes with all its fields (a node the superior must
    /// learn) or only its id (one it already has).
    fn full(self) -> bool {
        matches!(self, CatalogEvent::Add | CatalogEvent::Update)
    }
}

/// One `<Item>` as GB/T 28181-2016 Annex A writes it; in a notification,
/// with its `<Event>` (and only the id for ON, OFF and DEL).
fn item_xml(item: &CatalogItem, civil_code: &str, event: Option<CatalogEvent>) -> String {
    let mut x = String::from("<Item>\r\n");
    x += &element("DeviceID", &item.id);
    if event.is_none_or(CatalogEvent::full) {
        x += &item_fields(item, civil_code);
    }
    if let Some(event) = event {
        x += &element("Event", event.as_str());
    }
    x + "</Item>\r\n"
}

/// An item's fields after its `DeviceID`.
fn item_fields(item: &CatalogItem, civil_code: &str) -> String {
    let mut x = element("Name", &item.name);
    match &item.node {
        Node::Group => {}
        Node::Organisation { parent, group } => {
            x += &element("ParentID", parent);
            x += &element("BusinessGroupID", group);
        }
        Node::Camera {
            parent,
            group,
            online,
            village,
            ..
        } => {
            x += &element("Manufacturer", "Xueliang");
            x += &element("Model", "Camera");
            x += &element("Owner", "Owner");
            x += &element("CivilCode", civil_code);
            x += &element("Address", village.as_deref().unwrap_or(""));
            x += &element("Parental", "0");
            x += &element("ParentID", parent);
            x += &element("BusinessGroupID", group);
            x += &element("SafetyWay", "0");
            x += &element("RegisterWay", "1");
            x += &element("Secrecy", "0");
            x += &element("Status", if *online { "ON" } else { "OFF" });
        }
    }
    x
}

/// The Response Catalog MESSAGE bodies: `SumNum` items in chunks of `chunk`.
pub fn catalog_bodies(
    config: &Gb28181Upstream,
    items: &[CatalogItem],
    sn: u32,
    chunk: usize,
    charset_label: &str,
) -> Vec<String> {
    let civil_code = &config.local_id[..8];
    let xml: Vec<String> = items
        .iter()
        .map(|item| item_xml(item, civil_code, None))
        .collect();
    item_lists("DeviceList", &xml, chunk)
        .into_iter()
        .map(|fields| manscdp::response("Catalog", sn, &config.local_id, charset_label, &fields))
        .collect()
}

/// The Notify Catalog bodies (目录通知) of `changes`, in chunks of `chunk`
/// items, all with the same `sn` and `SumNum`.
pub fn notify_bodies(
    config: &Gb28181Upstream,
    changes: &[(CatalogEvent, CatalogItem)],
    sn: u32,
    chunk: usize,
    charset_label: &str,
) -> Vec<String> {
    let civil_code = &config.local_id[..8];
    let xml: Vec<String> = changes
        .iter()
        .map(|(event, item)| item_xml(item, civil_code, Some(*event)))
        .collect();
    item_lists("DeviceList", &xml, chunk)
        .into_iter()
        .map(|fields| manscdp::notify("Catalog", sn, &config.local_id, charset_label, &fields))
        .collect()
}

/// `SumNum` and a list `<{tag} Num=..>` per chunk of `items` (one empty
/// list when there are none): a catalog's `DeviceList`, a record query's
/// `RecordList`.
pub(super) fn item_lists(tag: &str, items: &[String], chunk: usize) -> Vec<String> {
    let chunks: Vec<&[String]> = if items.is_empty() {
        vec![&[]]
    } else {
        items.chunks(chunk.max(1)).collect()
    };
    chunks
        .into_iter()
        .map(|part| {
            let mut fields = element("SumNum", &items.len().to_string());
            fields += &format!("<{tag} Num=\"{}\">\r\n", part.len());
            fields += &part.concat();
            fields + &format!("</{tag}>\r\n")
        })
        .collect()
}

/// What changed from the catalog `before` to `after`, in `after`'s order
/// (removals last): new nodes ADD, gone ones DEL; a camera whose condition
/// alone changed VLOST or DEFECT when it has that trouble now, else ON or
/// OFF as its video came or went (or its trouble ended); any other change
/// of a node's fields UPDATE (with its status, so one event says it all).
pub fn catalog_changes(
    before: &[CatalogItem],
    after: &[CatalogItem],
) -> Vec<(CatalogEvent, CatalogItem)> {
    let old: HashMap<&str, &CatalogItem> = before.iter().map(|i| (i.id.as_str(), i)).collect();
    let new: HashSet<&str> = after.iter().map(|i| i.id.as_str()).collect();
    let mut changes = Vec::new();
    for item in after {
        let event = match old.get(item.id.as_str()) {
            None => Some(CatalogEvent::Add),
            Some(was) if *was == item => None,
            Some(was) => match (condition_of(was), condition_of(item)) {
                (Some(then), Some(now)) if *was == &with_condition(item, then) => {
                    Some(condition_event(now))
                }
                _ => Some(CatalogEvent::Update),
            },
        };
        if let Some(event) = event {
            changes.push((event, item.clone()));
        }
    }
    for item in before {
        if !new.contains(item.id.as_str()) {
            changes.push((CatalogEvent::Del, item.clone()));
        }
    }
    changes
}

/// A camera's condition: delivering video, and its trouble.
type Condition = (bool, Option<CameraTrouble>);

fn condition_of(item: &CatalogItem) -> Option<Condition> {
    match item.node {
        Node::Camera {
            online, trouble, ..
        } => Some((online, trouble)),
        _ => None,
    }
}

/// The event that tells a camera's new condition.
fn condition_event((online, trouble): Condition) -> CatalogEvent {
    match (trouble, online) {
        (Some(CameraTrouble::VideoLost), _) => CatalogEvent::VideoLost,
        (Some(CameraTrouble::Defect), _) => CatalogEvent::Defect,
        (None, true) => CatalogEvent::On,
        (None, false) => CatalogEvent::Off,
    }
}

/// `item` with its camera's condition set to `condition`.
fn with_condition(item: &CatalogItem, (online, trouble): Condition) -> CatalogItem {
    let mut item = item.clone();
    if let Node::Camera {
        online: o,
        trouble: t,
        ..
    } = &mut item.node
    {
        *o = online;
        *t = trouble;
    }
    item
}

impl Shared {
    /// A MESSAGE from a superior platform: 200 and the answer later for
    /// the queries we answer, 404 for another device id (for RecordInfo: a
    /// channel not in its catalog), 400 for a body that is not MANSCDP or
    /// a record query without a usable time window.
    pub(super) fn on_upstream_message(
        &self,
        link: &Arc<Link>,
        request: &Message,
        peer: &Peer,
    ) -> Reply {
        let (text, _) = charset::decode(&request.body);
        let command = match manscdp::parse(&text) {
            Ok(command) => command,
            Err(error) => {
                self.log_bad("bad_xml", peer, &error.to_string());
                return self.reply(request, peer, 400, "Bad Request").into();
            }
        };
        let kind = match command.cmd_type.to_ascii_lowercase().as_str() {
            "catalog" => Some(QueryKind::Catalog),
            "deviceinfo" => Some(QueryKind::DeviceInfo),
            "devicestatus" => Some(QueryKind::DeviceStatus),
            "recordinfo" if command.root == Root::Query => {
                match self.record_query(link, &command) {
                    Ok(query) => Some(QueryKind::RecordInfo(query)),
                    Err((code, reason, detail)) => {
                        info!(upstream = link.id(), code, %detail, "superior's record query refused");
                        return self.reply(request, peer, code, reason).into();
                    }
                }
            }
            _ => None,
        };
        let (Root::Query, Some(kind)) = (command.root, kind) else {
            debug!(upstream = link.id(), cmd = %command.cmd_type, "superior's MANSCDP command not handled; answered 200");
            return self.reply(request, peer, 200, "OK").into();
        };
        if !matches!(kind, QueryKind::RecordInfo(_))
            && command
                .device_id
                .as_deref()
                .is_some_and(|d| d != link.settings.config.local_id)
        {
            return self.reply(request, peer, 404, "Not Found").into();
        }
        Reply {
            response: self.reply(request, peer, 200, "OK"),
            query_catalog: None,
            upstream_query: Some(UpstreamQuery {
                link: link.clone(),
                kind,
                sn: command.sn.unwrap_or(0),
            }),
        }
    }

    /// The record query of `command`, for a channel of `link`'s catalog;
    /// else the answer: 404 for a channel not in it, 400 for no usable
    /// time window.
    fn record_query(
        &self,
        link: &Link,
        command: &manscdp::Command,
    ) -> Result<RecordQuery, (u16, &'static str, String)> {
        let channel = command.device_id.as_deref().unwrap_or_default();
        let (camera, name) = catalog_items(&link.settings.config, &link.cameras.cameras())
            .into_iter()
            .find_map(|item| match item.node {
                Node::Camera { camera, .. } if item.id == channel => Some((camera, item.name)),
                _ => None,
            })
            .ok_or_else(|| {
                (
                    404,
                    "Not Found",
                    format!("no channel {channel} in its catalog"),
                )
            })?;
        RecordQuery::read(command, (channel, &camera, &name), link.settings.timezone)
            .map_err(|e| (400, "Bad Request", e.to_string()))
    }

    /// Where a camera is, as the catalog says it (its village).
    fn channel_address(&self, link: &Link, camera: &str) -> String {
        link.cameras
            .cameras()
            .into_iter()
            .find(|c| c.id == camera)
            .and_then(|c| c.village)
            .unwrap_or_default()
    }

    pub(super) async fn answer_upstream(&self, query: UpstreamQuery) {
        let link = &query.link;
        let c = &link.settings.config;
        let label = link.settings.charset().label().to_owned();
        let bodies = match &query.kind {
            QueryKind::RecordInfo(record) => {
                let recordings = self.video.recordings();
                match record.clips(recordings.as_deref()).await {
                    Ok(clips) => record_bodies(
                        record,
                        &clips,
                        &c.local_id,
                        &self.channel_address(link, &record.camera),
                        query.sn,
                        link.settings.catalog_chunk,
                        &label,
                    ),
                    Err(error) => {
                        warn!(upstream = link.id(), %error, "event clips not read: record query not answered");
                        return;
                    }
                }
            }
            QueryKind::Catalog => {
                let items = catalog_items(c, &link.cameras.cameras());
                catalog_bodies(c, &items, query.sn, link.settings.catalog_chunk, &label)
            }
            QueryKind::DeviceInfo => {
                let channels = catalog_items(c, &link.cameras.cameras())
                    .iter()
                    .filter(|i| matches!(i.node, Node::Camera { .. }))
                    .count();
                let fields = element("DeviceName", &c.group_name)
                    + &element("Result", "OK")
                    + &element("Manufacturer", "Xueliang")
                    + &element("Model", "Xueliang")
                    + &element("Firmware", env!("CARGO_PKG_VERSION"))
                    + &element("Channel", &channels.to_string());
                vec![manscdp::response(
                    "DeviceInfo",
                    query.sn,
                    &c.local_id,
                    &label,
                    &fields,
                )]
            }
            QueryKind::DeviceStatus => {
                let fields = element("Result", "OK")
                    + &element("Online", "ONLINE")
                    + &element("Status", "OK")
                    + &element("DeviceTime", &gb_date(self.clock.now()))
                    + &element("Encode", "ON")
                    + &element("Record", "OFF");
                vec![manscdp::response(
                    "DeviceStatus",
                    query.sn,
                    &c.local_id,
                    &label,
                    &fields,
                )]
            }
        };
        let parts = bodies.len();
        for (i, body) in bodies.iter().enumerate() {
            if let Err(error) = self.message_upstream(link, body).await {
                warn!(upstream = link.id(), kind = ?query.kind, part = i + 1, parts, %error,
                    "answer to the superior platform not taken; the rest is not sent");
                return;
            }
        }
        if query.kind == QueryKind::Catalog {
            link.catalog_answered();
        }
        info!(upstream = link.id(), kind = ?query.kind, sn = query.sn, parts, "answered the superior platform");
    }
}

/// A superior sharing every camera, for the unit tests of the cascade.
#[cfg(test)]
pub(crate) fn test_upstream() -> Gb28181Upstream {
    use xueliang_core::config::gb28181::{UpstreamCharset, UpstreamTransport};
    Gb28181Upstream {
        id: "11010000002000000001".into(),
        domain: "1101000000".into(),
        address: "127.0.0.1".into(),
        port: 5060,
        transport: UpstreamTransport::Udp,
        password: xueliang_core::Secret::new("pw"),
        local_id: "34020000002000000001".into(),
        register_expires_s: 3600,
        keepalive_s: 60,
        keepalive_misses: 3,
        charset: UpstreamCharset::Gb2312,
        group_name: "雪亮工程".into(),
        max_upstream_streams: 16,
        villages: vec![],
        cameras: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Gb28181Upstream {
        test_upstream()
    }

    fn camera(id: &str, village: Option<&str>, grid: Option<&str>) -> CascadeCamera {
        CascadeCamera {
            id: id.into(),
            name: format!("{id} 名"),
            village: village.map(Into::into),
            grid: grid.map(Into::into),
            online: id != "off",
            trouble: None,
            gb_channel: None,
        }
    }

    fn cameras() -> Vec<CascadeCamera> {
        vec![
            camera("east", Some("东村"), Some("一网格")),
            camera("west", Some("西村"), None),
            camera("off", None, None),
            CascadeCamera {
                gb_channel: Some("34020000001310000001".into()),
                ..camera("gb", Some("东村"), Some("一网格"))
            },
        ]
    }

    #[test]
    fn the_tree_has_the_group_villages_grids_and_cameras_with_stable_ids() {
        let items = catalog_items(&config(), &cameras());
        assert_eq!(items.len(), 1 + 2 + 1 + 4);
        let ids: HashSet<_> = items.iter().map(|i| i.id.clone()).collect();
        assert_eq!(ids.len(), items.len(), "ids are unique");
        for i in &items {
            assert!(
                i.id.len() == 20 && i.id.bytes().all(|b| b.is_ascii_digit()),
                "{}",
                i.id
            );
        }
        assert_eq!(items[0].id, "34020000002150000001");
        let by_name = |n: &str| items.iter().find(|i| i.name == n).unwrap();
        let east_village = by_name("东村");
        assert_eq!(&east_village.id[10..14], "2160");
        let grid = by_name("一网格");
        assert_eq!(
            grid.node,
            Node::Organisation {
                parent: east_village.id.clone(),
                group: items[0].id.clone()
            }
        );
        let east = by_name("east 名");
        assert_eq!(&east.id[10..13], "131");
        assert!(
            matches!(&east.node, Node::Camera { parent, online: true, .. } if *parent == grid.id)
        );
        assert!(
            matches!(&by_name("west 名").node, Node::Camera { parent, .. } if *parent == by_name("西村").id)
        );
        assert!(
            matches!(&by_name("off 名").node, Node::Camera { parent, online: false, .. } if *parent == items[0].id)
        );
        assert_eq!(by_name("gb 名").id, "34020000001310000001");

        // Adding a camera and reordering the input changes no existing id.
        let mut more = cameras();
        more.reverse();
        more.push(camera("north", Some("北村"), Some("二网格")));
        let again = catalog_items(&config(), &more);
        for i in &items {
            assert!(
                again.iter().any(|a| a.id == i.id && a.name == i.name),
                "{} moved",
                i.name
            );
        }
    }

    #[test]
    fn only_the_shared_cameras_are_listed() {
        let mut c = config();
        c.villages = vec!["东村".into()];
        c.cameras = vec!["off".into()];
        let items = catalog_items(&c, &cameras());
        let names: Vec<_> = items.iter().map(|i| i.name.as_str()).collect();
        assert!(
            names.contains(&"east 名") && names.contains(&"gb 名") && names.contains(&"off 名")
        );
        assert!(!names.contains(&"west 名") && !names.contains(&"西村"));
    }

    #[test]
    fn colliding_numbers_take_the_next_free_one() {
        let n = Numbering {
            prefix: "3402000000",
            type_code: "131",
            network: '0',
            low: 1,
            high: 3,
        };
        let keys: BTreeSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let mut used = HashSet::new();
        let ids = n.assign(&keys, &mut used);
        let distinct: HashSet<_> = ids.values().collect();
        assert_eq!(distinct.len(), 3);
    }

    #[test]
    fn changes_are_told_with_the_standards_events() {
        let c = config();
        let before = catalog_items(&c, &cameras());
        assert!(catalog_changes(&before, &before).is_empty());

        // east goes dark, west is renamed, off comes back, north is new
        // (with its village), gb leaves (its grid stays: east is in it).
        let mut now = cameras();
        now[0].online = false;
        now[1].name = "西村 新名".into();
        now[2].online = true;
        now.retain(|cam| cam.id != "gb");
        now.push(camera("north", Some("北村"), None));
        let after = catalog_items(&c, &now);
        let changes = catalog_changes(&before, &after);
        let event_of = |name: &str| {
            changes
                .iter()
                .find(|(_, i)| i.name == name)
                .map(|(e, _)| *e)
        };
        assert_eq!(event_of("east 名"), Some(CatalogEvent::Off));
        assert_eq!(event_of("off 名"), Some(CatalogEvent::On));
        assert_eq!(event_of("西村 新名"), Some(CatalogEvent::Update));
        assert_eq!(event_of("north 名"), Some(CatalogEvent::Add));
        assert_eq!(event_of("北村"), Some(CatalogEvent::Add));
        assert_eq!(event_of("gb 名"), Some(CatalogEvent::Del));
        assert_eq!(changes.len(), 6, "{changes:?}");
        // A camera renamed while it went dark: one UPDATE with its status.
        let mut renamed = cameras();
        renamed[0].online = false;
        renamed[0].name = "east 新".into();
        let changes = catalog_changes(&before, &catalog_items(&c, &renamed));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].0, CatalogEvent::Update);
    }

    #[test]
    fn troubles_are_told_as_vlost_and_defect_and_their_end_as_on_or_off() {
        let c = config();
        let before = catalog_items(&c, &cameras());
        // east's lens is covered; "off" (offline) refuses our password.
        let mut now = cameras();
        now[0].trouble = Some(CameraTrouble::VideoLost);
        now[2].trouble = Some(CameraTrouble::Defect);
        let after = catalog_items(&c, &now);
        let changes = catalog_changes(&before, &after);
        let event_of = |changes: &[(CatalogEvent, CatalogItem)], name: &str| {
            changes
                .iter()
                .find(|(_, i)| i.name == name)
                .map(|(e, _)| *e)
        };
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(event_of(&changes, "east 名"), Some(CatalogEvent::VideoLost));
        assert_eq!(event_of(&changes, "off 名"), Some(CatalogEvent::Defect));
        let bodies = notify_bodies(&c, &changes, 3, 10, "GB2312");
        assert!(bodies[0].contains("<Event>VLOST</Event>"), "{}", bodies[0]);
        assert!(bodies[0].contains("<Event>DEFECT</Event>"), "{}", bodies[0]);
        assert!(!bodies[0].contains("<Name>"), "the ids only: {}", bodies[0]);
        // Uncovered: ON; the faulty one no longer answering at all: OFF.
        let back = catalog_changes(&after, &before);
        assert_eq!(event_of(&back, "east 名"), Some(CatalogEvent::On));
        assert_eq!(event_of(&back, "off 名"), Some(CatalogEvent::Off));
        // A covered camera that goes offline: OFF.
        let mut dark = now.clone();
        dark[0].online = false;
        dark[0].trouble = None;
        let gone = catalog_changes(&after, &catalog_items(&c, &dark));
        assert_eq!(gone.len(), 1, "{gone:?}");
        assert_eq!(event_of(&gone, "east 名"), Some(CatalogEvent::Off));
    }

    #[test]
    fn notify_bodies_carry_the_event_and_parse_back() {
        let c = config();
        let items = catalog_items(&c, &cameras());
        let camera = items
            .iter()
            .find(|i| i.name == "east 名")
            .expect("east")
            .clone();
        let changes = vec![
            (CatalogEvent::Off, camera.clone()),
            (CatalogEvent::Add, camera.clone()),
            (CatalogEvent::Del, items[1].clone()),
        ];
        let bodies = notify_bodies(&c, &changes, 12, 2, "GB2312");
        assert_eq!(bodies.len(), 2);
        let command = manscdp::parse(&bodies[0]).expect("parses");
        assert!(command.is(Root::Notify, "Catalog"));
        assert_eq!(command.sn, Some(12));
        assert_eq!(command.device_id.as_deref(), Some("34020000002000000001"));
        let off = format!(
            "<Item>\r\n<DeviceID>{}</DeviceID>\r\n<Event>OFF</Event>\r\n</Item>",
            camera.id
        );
        assert!(bodies[0].contains(&off), "{}", bodies[0]);
        assert!(bodies[0].contains("<SumNum>3</SumNum>"));
        assert!(bodies[0].contains("<DeviceList Num=\"2\">"));
        // ADD carries the whole item, with its status.
        assert!(
            bodies[0].contains("<Status>ON</Status>\r\n<Event>ADD</Event>\r\n</Item>"),
            "{}",
            bodies[0]
        );
        assert!(bodies[1].contains("<Event>DEL</Event>"));
        assert!(!bodies[1].contains("<Name>"), "DEL: the id only");
    }

    #[test]
    fn bodies_are_chunked_and_parse_back() {
        let c = config();
        let items = catalog_items(&c, &cameras());
        let bodies = catalog_bodies(&c, &items, 9, 3, "GB2312");
        assert_eq!(bodies.len(), 3);
        let mut seen = 0;
        for body in &bodies {
            let bytes = charset::Charset::gb2312().encode(body);
            let (text, _) = charset::decode(&bytes);
            let command = manscdp::parse(&text).unwrap();
            let part = command.catalog.unwrap();
            assert_eq!(part.sum_num, Some(items.len() as u32));
            assert_eq!(command.sn, Some(9));
            seen += part.items.len();
        }
        assert_eq!(seen, items.len());
        assert!(bodies.concat().contains("<Name>东村</Name>"));
        let empty = catalog_bodies(&c, &[], 1, 3, "GB2312");
        assert_eq!(empty.len(), 1);
        assert!(empty[0].contains("<SumNum>0</SumNum>"));
    }
}
