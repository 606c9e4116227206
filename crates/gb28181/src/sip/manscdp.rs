//! MANSCDP, the XML that GB/T 28181 carries in MESSAGE bodies: reading the
//! commands devices send (Keepalive, Catalog responses, anything else by
//! name) and writing the queries the platform sends. Input is text already
//! decoded by [`super::charset`]; a body that is not well-formed XML is an
//! error, never a panic. DTDs are refused (roxmltree's default).

use roxmltree::{Document, Node};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("not well-formed XML: {0}")]
    NotWellFormed(String),
    #[error("root element <{0}> is not a MANSCDP command")]
    UnknownRoot(String),
    #[error("no CmdType")]
    NoCmdType,
}

/// The kind of MANSCDP document, from its root element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Root {
    Query,
    Response,
    Notify,
    Control,
}

/// A channel (camera, or an NVR's input) from a Catalog response.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Channel {
    pub id: String,
    pub name: String,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub status: ChannelStatus,
    pub parent_id: Option<String>,
    pub civil_code: Option<String>,
    pub longitude: Option<f64>,
    pub latitude: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChannelStatus {
    On,
    Off,
    #[default]
    Unknown,
}

impl ChannelStatus {
    fn parse(text: &str) -> ChannelStatus {
        match text.trim().to_ascii_uppercase().as_str() {
            "ON" | "ONLINE" | "OK" => ChannelStatus::On,
            "OFF" | "OFFLINE" => ChannelStatus::Off,
            _ => ChannelStatus::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelStatus::On => "ON",
            ChannelStatus::Off => "OFF",
            ChannelStatus::Unknown => "UNKNOWN",
        }
    }
}

/// One part of a catalog answer (a device may split it over several MESSAGEs).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CatalogPart {
    /// How many items the whole answer has.
    pub sum_num: Option<u32>,
    pub items: Vec<Channel>,
}

/// A parsed MANSCDP document, with what the platform uses of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub root: Root,
    pub cmd_type: String,
    pub sn: Option<u32>,
    pub device_id: Option<String>,
    /// Present when this is a Catalog response.
    pub catalog: Option<CatalogPart>,
    /// The root's other child elements that hold text (a query's
    /// conditions: `StartAlarmPriority`, ...), names as written, text
    /// trimmed.
    pub fields: Vec<(String, String)>,
}

impl Command {
    pub fn is(&self, root: Root, cmd_type: &str) -> bool {
        self.root == root && self.cmd_type.eq_ignore_ascii_case(cmd_type)
    }

    /// The text of the root's child element `name` (any case); `None` when
    /// it is absent or empty.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// What [`Command::fields`] holds of `root`.
fn text_fields(root: Node<'_, '_>) -> Vec<(String, String)> {
    const HEAD: [&str; 3] = ["CmdType", "SN", "DeviceID"];
    root.children()
        .filter(|c| c.is_element() && c.first_element_child().is_none())
        .map(|c| c.tag_name().name())
        .filter(|name| !HEAD.iter().any(|h| h.eq_ignore_ascii_case(name)))
        .filter_map(|name| Some((name.to_owned(), child_text(root, name)?.to_owned())))
        .collect()
}

/// The text of the first child element named `name` (any case), trimmed.
fn child_text<'a>(node: Node<'a, 'a>, name: &str) -> Option<&'a str> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name().eq_ignore_ascii_case(name))
        .and_then(|c| c.text())
        .map(str::trim)
}

/// A field of a catalog item, in element form (`<Name>..</Name>`) or, as
/// some devices write it, as an attribute (`<Item Name=".."/>`).
fn field(item: Node<'_, '_>, name: &str) -> Option<String> {
    child_text(item, name)
        .or_else(|| {
            item.attributes()
                .find(|a| a.name().eq_ignore_ascii_case(name))
                .map(|a| a.value().trim())
        })
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn coordinate(item: Node<'_, '_>, name: &str) -> Option<f64> {
    field(item, name)?
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
}

fn channel(item: Node<'_, '_>) -> Option<Channel> {
    let id = field(item, "DeviceID")?;
    Some(Channel {
        name: field(item, "Name").unwrap_or_else(|| id.clone()),
        id,
        manufacturer: field(item, "Manufacturer"),
        model: field(item, "Model"),
        status: field(item, "Status").map_or(ChannelStatus::Unknown, |s| ChannelStatus::parse(&s)),
        parent_id: field(item, "ParentID"),
        civil_code: field(item, "CivilCode"),
        longitude: coordinate(item, "Longitude"),
        latitude: coordinate(item, "Latitude"),
    })
}

fn catalog_part(root: Node<'_, '_>) -> CatalogPart {
    let sum_num = child_text(root, "SumNum").and_then(|v| v.parse().ok());
    let items = root
        .children()
        .filter(|c| c.is_element() && c.tag_name().name().eq_ignore_ascii_case("DeviceList"))
        .flat_map(|list| list.children())
        .filter(|c| c.is_element() && c.tag_name().name().eq_ignore_ascii_case("Item"))
        .filter_map(channel)
        .collect();
    CatalogPart { sum_num, items }
}

/// Parses a decoded MANSCDP body.
pub fn parse(text: &str) -> Result<Command, XmlError> {
    let doc = Document::parse(text).map_err(|e| XmlError::NotWellFormed(e.to_string()))?;
    let root_node = doc.root_element();
    let root = match root_node.tag_name().name().to_ascii_lowercase().as_str() {
        "query" => Root::Query,
        "response" => Root::Response,
        "notify" => Root::Notify,
        "control" => Root::Control,
        other => return Err(XmlError::UnknownRoot(other.chars().take(32).collect())),
    };
    let cmd_type = child_text(root_node, "CmdType")
        .filter(|c| !c.is_empty())
        .ok_or(XmlError::NoCmdType)?
        .to_owned();
    let catalog = (root == Root::Response && cmd_type.eq_ignore_ascii_case("Catalog"))
        .then(|| catalog_part(root_node));
    Ok(Command {
        root,
        sn: child_text(root_node, "SN").and_then(|v| v.parse().ok()),
        device_id: child_text(root_node, "DeviceID").map(str::to_owned),
        cmd_type,
        catalog,
        fields: text_fields(root_node),
    })
}

/// Escapes text for an XML element.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A `<Query>` document declaring `charset_label` (encode it in that charset).
pub fn query(cmd_type: &str, sn: u32, device_id: &str, charset_label: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"{}\"?>\r\n<Query>\r\n<CmdType>{}</CmdType>\r\n\
         <SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n</Query>\r\n",
        escape(charset_label),
        escape(cmd_type),
        escape(device_id)
    )
}

/// A `<Notify>` Keepalive of ours (to a superior platform).
pub fn keepalive(sn: u32, device_id: &str, charset_label: &str) -> String {
    notify(
        "Keepalive",
        sn,
        device_id,
        charset_label,
        &element("Status", "OK"),
    )
}

/// A `<Response>` of ours: the common head, then `fields` (already XML).
pub fn response(
    cmd_type: &str,
    sn: u32,
    device_id: &str,
    charset_label: &str,
    fields: &str,
) -> String {
    message("Response", cmd_type, sn, device_id, charset_label, fields)
}

/// A `<Notify>` of ours: the common head, then `fields` (already XML).
pub fn notify(
    cmd_type: &str,
    sn: u32,
    device_id: &str,
    charset_label: &str,
    fields: &str,
) -> String {
    message("Notify", cmd_type, sn, device_id, charset_label, fields)
}

/// A MANSCDP body of ours with the root element `root`.
fn message(
    root: &str,
    cmd_type: &str,
    sn: u32,
    device_id: &str,
    charset_label: &str,
    fields: &str,
) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"{}\"?>\r\n<{root}>\r\n<CmdType>{}</CmdType>\r\n\
         <SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n{fields}</{root}>\r\n",
        escape(charset_label),
        escape(cmd_type),
        escape(device_id)
    )
}

/// `<name>text</name>` with the text escaped.
pub fn element(name: &str, text: &str) -> String {
    format!("<{name}>{}</{name}>\r\n", escape(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_notify() {
        let c = parse(
            "<?xml version=\"1.0\" encoding=\"GB2312\"?>\n<Notify>\n<CmdType>Keepalive</CmdType>\n\
             <SN>43</SN>\n<DeviceID>34020000001320000001</DeviceID>\n<Status>OK</Status>\n</Notify>\n",
        )
        .unwrap();
        assert!(c.is(Root::Notify, "Keepalive"));
        assert_eq!(c.sn, Some(43));
        assert_eq!(c.device_id.as_deref(), Some("34020000001320000001"));
        assert_eq!(c.catalog, None);
    }

    #[test]
    fn catalog_in_element_and_attribute_forms() {
        let c = parse(
            "<?xml version=\"1.0\"?><Response><CmdType>Catalog</CmdType><SN>7</SN>\
             <DeviceID>34020000001110000001</DeviceID><SumNum>3</SumNum>\
             <DeviceList Num=\"2\">\
             <Item><DeviceID>34020000001310000001</DeviceID><Name>东门 &amp; 北门</Name>\
             <Manufacturer>Hikvision</Manufacturer><Model>DS-2CD</Model><Status>ON</Status>\
             <ParentID>34020000001110000001</ParentID><CivilCode>340200</CivilCode>\
             <Longitude>117.28</Longitude><Latitude>31.86</Latitude></Item>\
             <Item DeviceID=\"34020000001310000002\" Name=\"西门\" Status=\"OFF\" Longitude=\"x\"/>\
             <Item><Name>no id: skipped</Name></Item>\
             </DeviceList></Response>",
        )
        .unwrap();
        let part = c.catalog.unwrap();
        assert_eq!(part.sum_num, Some(3));
        assert_eq!(part.items.len(), 2);
        let a = &part.items[0];
        assert_eq!(a.name, "东门 & 北门");
        assert_eq!(a.status, ChannelStatus::On);
        assert_eq!(a.manufacturer.as_deref(), Some("Hikvision"));
        assert_eq!(a.civil_code.as_deref(), Some("340200"));
        assert_eq!(a.longitude, Some(117.28));
        let b = &part.items[1];
        assert_eq!(
            (b.id.as_str(), b.name.as_str()),
            ("34020000001310000002", "西门")
        );
        assert_eq!(b.status, ChannelStatus::Off);
        assert_eq!(b.longitude, None);
    }

    #[test]
    fn garbage_is_an_error() {
        for text in [
            "",
            "not xml",
            "<Notify><CmdType>Keepalive</CmdType>",
            "<Html><CmdType>x</CmdType></Html>",
            "<Notify><SN>1</SN></Notify>",
            "<Notify><CmdType></CmdType></Notify>",
            "<!DOCTYPE a [<!ENTITY x \"y\">]><Notify><CmdType>&x;</CmdType></Notify>",
            "<Response><CmdType>Catalog</CmdType><Name>A & B</Name></Response>",
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
        let c = parse("<Response><CmdType>Catalog</CmdType><SumNum>x</SumNum></Response>").unwrap();
        assert_eq!(c.catalog.unwrap(), CatalogPart::default());
    }

    #[test]
    fn queries_are_escaped_and_parse_back() {
        let q = query("Catalog", 17, "3402<&>", "GB2312");
        assert!(q.starts_with("<?xml version=\"1.0\" encoding=\"GB2312\"?>"));
        let c = parse(&q).unwrap();
        assert!(c.is(Root::Query, "catalog"));
        assert_eq!(c.sn, Some(17));
        assert_eq!(c.device_id.as_deref(), Some("3402<&>"));
        assert!(c.fields.is_empty(), "{:?}", c.fields);
    }

    #[test]
    fn a_querys_conditions_are_its_fields() {
        let c = parse(
            "<Query><CmdType>Alarm</CmdType><SN>5</SN><DeviceID>x</DeviceID>\
             <StartAlarmPriority> 1 </StartAlarmPriority><alarmmethod>5</alarmmethod>\
             <AlarmType></AlarmType><Info><AlarmType>6</AlarmType></Info></Query>",
        )
        .unwrap();
        assert_eq!(c.field("StartAlarmPriority"), Some("1"));
        assert_eq!(c.field("AlarmMethod"), Some("5"), "any case");
        assert_eq!(
            c.field("AlarmType"),
            None,
            "empty; the nested one is not the root's"
        );
        assert_eq!(c.field("EndAlarmPriority"), None);
        assert_eq!(c.field("SN"), None, "the head is not among them");
    }
}
