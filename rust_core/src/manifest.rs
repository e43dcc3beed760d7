//! Kubernetes manifest policy checks over multi-document YAML.
//!
//! Documents are split on lines that start with `---` (or are exactly `...`);
//! segments holding only blanks and comments are skipped and not counted, so
//! `document` is the 0-based index among the real documents.  Every rule has a
//! stable id; parse and structure errors are `CODE000` violations, never panics.
//! Violations are sorted by (document, rule_id, path, message).

use serde_yaml::Value;

pub const RULES: [(&str, &str); 10] = [
    ("CODE000", "parse-error"),
    ("CODE001", "image-pinned"),
    ("CODE002", "resources-requests"),
    ("CODE003", "resources-limits"),
    ("CODE004", "readiness-probe"),
    ("CODE005", "liveness-probe"),
    ("CODE006", "run-as-non-root"),
    ("CODE007", "no-privileged"),
    ("CODE008", "no-host-path"),
    ("CODE009", "required-labels"),
];

#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub rule_id: &'static str,
    pub rule: &'static str,
    pub document: usize,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub path: String,
    pub message: String,
}

/// Resolve rule ids or names to a mask over `RULES`; `None` enables all.
pub fn resolve_rules(rules: Option<&[String]>) -> Result<[bool; 10], String> {
    let mut mask = [rules.is_none(); 10];
    mask[0] = true;
    if let Some(rs) = rules {
        for r in rs {
            let pos = RULES.iter().position(|(id, name)| r == id || r == name);
            match pos {
                Some(p) => mask[p] = true,
                None => return Err(format!("unknown rule {r:?}")),
            }
        }
    }
    Ok(mask)
}

fn is_blank(seg: &str) -> bool {
    seg.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#')
    })
}

/// Split a multi-document YAML string into its non-empty documents.
pub fn split_documents(text: &str) -> Vec<String> {
    let mut segs: Vec<String> = Vec::new();
    let mut cur = String::new();
    for line in text.split('\n') {
        let l = line.strip_suffix('\r').unwrap_or(line);
        let b = l.as_bytes();
        let is_start = b.starts_with(b"---") && (b.len() == 3 || b[3] == b' ' || b[3] == b'\t');
        if is_start || l == "..." {
            segs.push(std::mem::take(&mut cur));
            if is_start {
                cur.push_str(&l[3..]);
                cur.push('\n');
            }
        } else {
            cur.push_str(l);
            cur.push('\n');
        }
    }
    segs.push(cur);
    segs.into_iter().filter(|s| !is_blank(s)).collect()
}

const WORKLOAD_TEMPLATE: [&str; 5] = [
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
];

fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    if kind == "Pod" {
        Some(&["spec"])
    } else if WORKLOAD_TEMPLATE.contains(&kind) {
        Some(&["spec", "template", "spec"])
    } else if kind == "CronJob" {
        Some(&["spec", "jobTemplate", "spec", "template", "spec"])
    } else {
        None
    }
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_mapping().and_then(|m| m.get(key))
}

fn get_str<'a>(v: &'a Value, key: &str) -> &'a str {
    get(v, key).and_then(Value::as_str).unwrap_or("")
}

fn get_bool(v: Option<&Value>, key: &str) -> Option<bool> {
    v.and_then(|v| get(v, key)).and_then(Value::as_bool)
}

/// Is the image reference pinned (a digest, or a tag other than `latest`)?
pub fn image_problem(image: &str) -> Option<String> {
    if image.contains('@') {
        return None;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        None => Some(format!(
            "image {image:?} has no tag or digest; pin a version tag or a digest"
        )),
        Some((_, "")) => Some(format!(
            "image {image:?} has an empty tag; pin a version tag or a digest"
        )),
        Some((_, "latest")) => Some(format!(
            "image {image:?} uses the mutable tag 'latest'; pin a version tag or a digest"
        )),
        Some(_) => None,
    }
}

struct Ctx<'a> {
    doc: usize,
    kind: &'a str,
    name: &'a str,
    namespace: &'a str,
    mask: [bool; 10],
    out: &'a mut Vec<Violation>,
}

impl Ctx<'_> {
    fn add(&mut self, rule: usize, path: String, message: String) {
        if !self.mask[rule] {
            return;
        }
        self.out.push(Violation {
            rule_id: RULES[rule].0,
            rule: RULES[rule].1,
            document: self.doc,
            kind: self.kind.to_string(),
            name: self.name.to_string(),
            namespace: self.namespace.to_string(),
            path,
            message,
        });
    }
}

fn missing_keys(v: Option<&Value>, keys: &[&str]) -> Vec<String> {
    keys.iter()
        .filter(|k| v.and_then(|v| get(v, k)).is_none_or(Value::is_null))
        .map(|k| k.to_string())
        .collect()
}

fn check_container(ctx: &mut Ctx, c: &Value, base: &str, pod_non_root: Option<bool>, probes: bool) {
    if c.as_mapping().is_none() {
        ctx.add(0, base.to_string(), "container is not a mapping".into());
        return;
    }
    let cname = get_str(c, "name");
    match get(c, "image").and_then(Value::as_str) {
        Some(img) if !img.is_empty() => {
            if let Some(msg) = image_problem(img) {
                ctx.add(
                    1,
                    format!("{base}.image"),
                    format!("container {cname:?}: {msg}"),
                );
            }
        }
        _ => ctx.add(
            1,
            format!("{base}.image"),
            format!("container {cname:?}: image is missing"),
        ),
    }
    let res = get(c, "resources");
    for (rule, key) in [(2usize, "requests"), (3usize, "limits")] {
        let m = missing_keys(res.and_then(|r| get(r, key)), &["cpu", "memory"]);
        if !m.is_empty() {
            ctx.add(
                rule,
                format!("{base}.resources.{key}"),
                format!(
                    "container {cname:?}: resources.{key} missing {}",
                    m.join(", ")
                ),
            );
        }
    }
    if probes {
        for (rule, key) in [(4usize, "readinessProbe"), (5usize, "livenessProbe")] {
            if get(c, key).and_then(Value::as_mapping).is_none() {
                ctx.add(
                    rule,
                    format!("{base}.{key}"),
                    format!("container {cname:?}: no {key}"),
                );
            }
        }
    }
    let sc = get(c, "securityContext");
    let non_root = get_bool(sc, "runAsNonRoot").or(pod_non_root);
    if non_root != Some(true) {
        ctx.add(
            6,
            format!("{base}.securityContext.runAsNonRoot"),
            format!(
                "container {cname:?}: runAsNonRoot is not true (container or pod securityContext)"
            ),
        );
    }
    if get_bool(sc, "privileged") == Some(true) {
        ctx.add(
            7,
            format!("{base}.securityContext.privileged"),
            format!("container {cname:?}: runs privileged"),
        );
    }
}

fn check_document(ctx: &mut Ctx, doc: &Value, required_labels: &[String]) {
    let labels = get(doc, "metadata").and_then(|m| get(m, "labels"));
    for l in required_labels {
        if labels.and_then(|ls| get(ls, l)).is_none() {
            ctx.add(
                9,
                "metadata.labels".into(),
                format!("missing required label {l:?}"),
            );
        }
    }
    let Some(path) = pod_spec_path(ctx.kind) else {
        return;
    };
    let mut spec = Some(doc);
    for k in path {
        spec = spec.and_then(|s| get(s, k));
    }
    let pod_path = path.join(".");
    let Some(spec) = spec.filter(|s| s.is_mapping()) else {
        ctx.add(0, pod_path, "pod spec is missing or not a mapping".into());
        return;
    };
    let pod_non_root = get_bool(get(spec, "securityContext"), "runAsNonRoot");
    let probes = ctx.kind != "Job" && ctx.kind != "CronJob";
    match get(spec, "containers").and_then(Value::as_sequence) {
        Some(cs) => {
            for (i, c) in cs.iter().enumerate() {
                let base = format!("{pod_path}.containers[{i}]");
                check_container(ctx, c, &base, pod_non_root, probes);
            }
        }
        None => ctx.add(
            0,
            format!("{pod_path}.containers"),
            "containers is missing or not a list".into(),
        ),
    }
    if let Some(cs) = get(spec, "initContainers").and_then(Value::as_sequence) {
        for (i, c) in cs.iter().enumerate() {
            let base = format!("{pod_path}.initContainers[{i}]");
            check_container(ctx, c, &base, pod_non_root, false);
        }
    }
    if let Some(vs) = get(spec, "volumes").and_then(Value::as_sequence) {
        for (j, v) in vs.iter().enumerate() {
            if get(v, "hostPath").is_some() {
                let vname = get_str(v, "name");
                ctx.add(
                    8,
                    format!("{pod_path}.volumes[{j}].hostPath"),
                    format!("volume {vname:?} mounts a hostPath"),
                );
            }
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

pub fn validate(text: &str, required_labels: &[String], mask: [bool; 10]) -> Vec<Violation> {
    let mut out = Vec::new();
    for (i, seg) in split_documents(text).iter().enumerate() {
        let parsed: Result<Value, _> = serde_yaml::from_str(seg);
        let mut ctx = Ctx {
            doc: i,
            kind: "",
            name: "",
            namespace: "",
            mask,
            out: &mut out,
        };
        let doc = match parsed {
            Ok(v) => v,
            Err(e) => {
                ctx.add(
                    0,
                    String::new(),
                    format!("invalid YAML: {}", first_line(&e.to_string())),
                );
                continue;
            }
        };
        if !doc.is_mapping() {
            ctx.add(0, String::new(), "document is not a mapping".into());
            continue;
        }
        let meta = get(&doc, "metadata");
        let kind = get_str(&doc, "kind");
        let name = meta.map(|m| get_str(m, "name")).unwrap_or("");
        let namespace = meta.map(|m| get_str(m, "namespace")).unwrap_or("");
        let mut ctx = Ctx {
            doc: i,
            kind,
            name,
            namespace,
            mask,
            out: &mut out,
        };
        if kind.is_empty() {
            ctx.add(0, "kind".into(), "document has no kind".into());
            continue;
        }
        check_document(&mut ctx, &doc, required_labels);
    }
    out.sort_by(|a, b| {
        (a.document, a.rule_id, &a.path, &a.message)
            .cmp(&(b.document, b.rule_id, &b.path, &b.message))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: prod, labels: {app: web, team: a}}
spec:
  template:
    spec:
      securityContext: {runAsNonRoot: true}
      containers:
      - name: web
        image: registry:5000/web:1.2.3
        resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: 1, memory: 128Mi}}
        readinessProbe: {httpGet: {path: /, port: 80}}
        livenessProbe: {httpGet: {path: /, port: 80}}
";

    #[test]
    fn good_manifest_is_clean() {
        let all = resolve_rules(None).unwrap();
        assert!(validate(GOOD, &["app".into()], all).is_empty());
    }

    #[test]
    fn finds_problems_and_parse_errors() {
        let all = resolve_rules(None).unwrap();
        let bad = GOOD.replace("web:1.2.3", "web:latest")
            + "---\nkind: [unclosed\n---\n# only a comment\n";
        let v = validate(&bad, &["owner".into()], all);
        let ids: Vec<_> = v.iter().map(|v| (v.document, v.rule_id)).collect();
        assert_eq!(ids, vec![(0, "CODE001"), (0, "CODE009"), (1, "CODE000")]);
        assert_eq!(v[0].path, "spec.template.spec.containers[0].image");
    }

    #[test]
    fn image_rules() {
        assert!(image_problem("nginx").is_some());
        assert!(image_problem("nginx:latest").is_some());
        assert!(image_problem("localhost:5000/nginx").is_some());
        assert!(image_problem("nginx:1.25").is_none());
        assert!(image_problem("nginx@sha256:abc").is_none());
    }
}
