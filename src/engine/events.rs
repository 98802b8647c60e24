//! The event bus behind `GET /events`: every lifecycle step publishes an event; subscribers
//! get a live stream, and a bounded history serves `since`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use chrono::Utc;
use serde::Serialize;
use tokio::sync::broadcast;

/// Events kept for `since` queries; older ones are dropped.
const HISTORY: usize = 1024;

#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// One event as Docker sends it (`{"Type":"container","Action":"start",...}`), with the
/// pre-1.22 fields `status`, `id` and `from` that older clients still read.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    #[serde(rename = "Type")]
    pub typ: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

pub struct EventBus {
    sender: broadcast::Sender<Event>,
    history: Mutex<VecDeque<Event>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus { sender: broadcast::channel(HISTORY).0, history: Mutex::new(VecDeque::with_capacity(HISTORY)) }
    }
}

impl EventBus {
    /// Publishes a container event. `attributes` come on top of the name and image.
    pub fn container(&self, action: &str, id: &str, name: &str, image: &str, labels: &BTreeMap<String, String>, attributes: &[(&str, String)]) {
        let mut all: BTreeMap<String, String> = labels.clone();
        all.insert("name".into(), name.trim_start_matches('/').to_string());
        all.insert("image".into(), image.to_string());
        for (key, value) in attributes {
            all.insert(key.to_string(), value.clone());
        }
        let now = Utc::now();
        let nanos = now.timestamp_nanos_opt().unwrap_or(0);
        // Old clients read "status" for the action, and only for the main actions.
        let status = (!action.contains(':')).then(|| action.to_string());
        self.publish(Event {
            typ: "container".into(),
            action: action.to_string(),
            actor: Actor { id: id.to_string(), attributes: all },
            scope: "local".into(),
            time: nanos / 1_000_000_000,
            time_nano: nanos,
            status,
            id: Some(id.to_string()),
            from: Some(image.to_string()),
        });
    }

    pub fn image(&self, action: &str, id: &str, name: &str) {
        let now = Utc::now();
        let nanos = now.timestamp_nanos_opt().unwrap_or(0);
        self.publish(Event {
            typ: "image".into(),
            action: action.to_string(),
            actor: Actor { id: id.to_string(), attributes: BTreeMap::from([("name".to_string(), name.to_string())]) },
            scope: "local".into(),
            time: nanos / 1_000_000_000,
            time_nano: nanos,
            status: Some(action.to_string()),
            id: Some(id.to_string()),
            from: None,
        });
    }

    fn publish(&self, event: Event) {
        let mut history = self.history.lock().unwrap();
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(event.clone());
        // A send fails only when no subscriber exists, and then nobody needs the event.
        let _ = self.sender.send(event);
    }

    /// Returns the stored events from `since_nanos` on and a receiver for the ones after them.
    /// Both are taken under the history lock, so no event falls between the two.
    pub fn subscribe(&self, since_nanos: Option<i64>) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let history = self.history.lock().unwrap();
        let receiver = self.sender.subscribe();
        let past = match since_nanos {
            Some(since) => history.iter().filter(|e| e.time_nano >= since).cloned().collect(),
            None => Vec::new(),
        };
        (past, receiver)
    }
}

/// Docker's event filters: `type`, `container` (id or name), `event`, `image`, `label`.
pub fn matches(event: &Event, filters: &std::collections::HashMap<String, Vec<String>>) -> bool {
    filters.iter().all(|(key, values)| {
        values.is_empty()
            || values.iter().any(|value| match key.as_str() {
                "type" => event.typ == *value,
                "event" => event.action == *value || event.action.split(':').next() == Some(value.as_str()),
                "container" => {
                    event.typ == "container"
                        && (event.actor.id.starts_with(value.as_str()) || event.actor.attributes.get("name") == Some(value))
                }
                "image" => event.actor.attributes.get("image") == Some(value) || (event.typ == "image" && event.actor.id == *value),
                "label" => match value.split_once('=') {
                    Some((k, v)) => event.actor.attributes.get(k).is_some_and(|a| a == v),
                    None => event.actor.attributes.contains_key(value.as_str()),
                },
                _ => true,
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn history_serves_since_and_filters_match() {
        let bus = EventBus::default();
        let labels = BTreeMap::from([("team".to_string(), "blue".to_string())]);
        bus.container("create", "abc123", "/web", "busybox", &labels, &[]);
        bus.container("die", "abc123", "/web", "busybox", &labels, &[("exitCode", "3".into())]);
        let (past, _) = bus.subscribe(Some(0));
        assert_eq!(past.len(), 2);
        assert_eq!(past[1].actor.attributes["exitCode"], "3");
        assert_eq!(past[0].actor.attributes["name"], "web");
        let only_die = HashMap::from([("event".to_string(), vec!["die".to_string()])]);
        assert!(!matches(&past[0], &only_die));
        assert!(matches(&past[1], &only_die));
        let by_name = HashMap::from([("container".to_string(), vec!["web".to_string()])]);
        assert!(matches(&past[0], &by_name));
        let by_label = HashMap::from([("label".to_string(), vec!["team=blue".to_string()])]);
        assert!(matches(&past[0], &by_label));
        let (none, _) = bus.subscribe(None);
        assert!(none.is_empty());
    }
}
