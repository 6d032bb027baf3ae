use super::*;
use serde_json::json;

fn request(op: &str) -> Value {
    json!({
        "kind": {"group": "pravega.pravega.io", "version": "v1beta1", "kind": "PravegaCluster"},
        "resource": {"group": "pravega.pravega.io", "version": "v1beta1", "resource": "pravegaclusters"},
        "requestKind": {"group": "pravega.pravega.io", "version": "v1beta1", "kind": "PravegaCluster"},
        "requestResource": {"group": "pravega.pravega.io", "version": "v1beta1", "resource": "pravegaclusters"},
        "name": "example",
        "namespace": "default",
        "operation": op,
        "userInfo": {"username": "admin", "groups": ["system:masters"]},
        "dryRun": false,
    })
}

fn object() -> Value {
    json!({"metadata": {"name": "example", "labels": {"app": "pravega"}},
        "spec": {"version": "0.5.0", "replicas": 3, "upgrade": {"paused": true},
            "tags": ["a", "b"], "ratio": 1.5, "name": "ünï"}})
}

fn old() -> Value {
    json!({"spec": {"version": "0.5.0", "replicas": 2, "upgrade": {"paused": false}}})
}

/// Evaluates `src` against `object()`, `old()` and an UPDATE request.
fn run(src: &str) -> Result<bool, EvalError> {
    let p = compile(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let (o, old, req) = (object(), old(), request("UPDATE"));
    p.evaluate(&Activation {
        object: &o,
        old_object: &old,
        request: &req,
    })
}

fn yes(src: &str) {
    assert_eq!(run(src), Ok(true), "{src}");
}

fn no(src: &str) {
    assert_eq!(run(src), Ok(false), "{src}");
}

fn fails(src: &str, why: &str) {
    assert_eq!(run(src), Err(EvalError(why.to_string())), "{src}");
}

fn refused(src: &str) -> String {
    match compile(src) {
        Ok(_) => panic!("{src} compiled"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn literals() {
    yes("true");
    no("false");
    yes("'a' == \"a\"");
    yes("'it\\'s' == \"it's\"");
    yes("'\\x41\\u00e9\\101\\n' == \"A\u{e9}A\\n\"");
    yes("-3 < 2");
    yes("-9223372036854775808 < 9223372036854775807");
    yes("null == null");
    yes("[1, 2, 3] == [1, 2, 3]");
    yes("[] != [1]");
    yes("['a', 'b',] == ['a', 'b']");
    yes("true // a comment\n && true");
}

#[test]
fn selection_and_has() {
    yes("object.spec.version == '0.5.0'");
    yes("object.spec.version == oldObject.spec.version");
    yes("object.metadata.labels.app == 'pravega'");
    yes("has(object.spec.upgrade) && has(object.spec.upgrade.paused)");
    no("has(object.spec.bookkeeper)");
    yes("has(request.name)");
    fails(
        "object.spec.bookkeeper.replicas == 3",
        "no such key: bookkeeper",
    );
    fails(
        "oldObject.spec.upgrade.autoRollback == true",
        "no such key: autoRollback",
    );
    // Selecting from a scalar, or a null oldObject, is a missing key; has() of it is false.
    fails("object.spec.version.major == 0", "no such key: major");
    let p = compile("has(oldObject.spec) || oldObject.spec.version == ''").unwrap();
    let (o, req) = (object(), request("CREATE"));
    let vars = Activation {
        object: &o,
        old_object: &Value::Null,
        request: &req,
    };
    assert_eq!(
        p.evaluate(&vars),
        Err(EvalError("no such key: spec".into()))
    );
    let p = compile("!has(oldObject.spec)").unwrap();
    assert_eq!(p.evaluate(&vars), Ok(true));
}

#[test]
fn comparisons() {
    yes("object.spec.replicas > oldObject.spec.replicas");
    yes("object.spec.replicas >= 3 && object.spec.replicas <= 3");
    no("object.spec.replicas < 3");
    yes("'abc' < 'abd'");
    yes("false < true");
    yes("object.spec.ratio > 1");
    yes("object.spec.replicas == 3");
    no("object.spec.replicas == '3'");
    yes("object.spec.replicas != '3'");
    yes("object.spec.upgrade == object.spec.upgrade");
    no("object.spec.upgrade == oldObject.spec.upgrade");
    fails("object.spec.replicas < 'x'", "no such overload");
    fails("object.spec.tags > 1", "no such overload");
}

#[test]
fn logic_absorbs_errors_as_cel_does() {
    // false && error, error && false: false.
    no("false && object.missing == 1");
    no("object.missing == 1 && false");
    // true || error, error || true: true.
    yes("true || object.missing == 1");
    yes("object.missing == 1 || true");
    // Otherwise the error surfaces (the left one first).
    fails("true && object.missing == 1", "no such key: missing");
    fails("object.missing == 1 && true", "no such key: missing");
    fails("false || object.missing == 1", "no such key: missing");
    fails(
        "object.first == 1 && object.second == 1",
        "no such key: first",
    );
    // A non-bool operand is an error too, and is absorbed the same way.
    fails("object.spec.version && true", "no such overload");
    no("object.spec.version && false");
    yes("true || object.spec.replicas");
    fails("!object.spec.version", "no such overload");
    yes("!(object.spec.replicas == 1)");
    yes("!!true");
}

#[test]
fn membership_and_size() {
    yes("request.operation in ['CREATE', 'UPDATE']");
    no("request.operation in ['DELETE']");
    yes("'a' in object.spec.tags");
    yes("'app' in object.metadata.labels");
    no("'team' in object.metadata.labels");
    yes("'system:masters' in request.userInfo.groups");
    fails("'a' in object.spec.version", "no such overload");
    yes("size(object.spec.tags) == 2");
    yes("object.spec.tags.size() == 2");
    yes("size('héllo') == 5");
    yes("object.spec.name.size() == 3");
    yes("size(object.metadata.labels) == 1");
    yes("size([]) == 0");
    fails("size(object.spec.replicas) == 1", "no such overload");
}

#[test]
fn request_fields() {
    yes("request.operation == 'UPDATE'");
    yes("request.kind.kind == 'PravegaCluster' && request.resource.resource == 'pravegaclusters'");
    yes("request.namespace == 'default' && request.name == 'example'");
    yes("request.dryRun == false");
    yes("request.userInfo.username == 'admin'");
    // Fields the API server omits when empty are missing keys.
    fails("request.subResource == ''", "no such key: subResource");
    no("has(request.subResource)");
}

#[test]
fn the_deploy_condition() {
    let cond = "!(request.operation == 'UPDATE' && has(object.spec.upgrade) && has(object.spec.upgrade.paused) && object.spec.upgrade.paused == true && object.spec.version == oldObject.spec.version)";
    let p = compile(cond).unwrap();
    let eval = |op: &str, o: Value, old: Value| {
        let req = request(op);
        p.evaluate(&Activation {
            object: &o,
            old_object: &old,
            request: &req,
        })
    };
    let spec =
        |version: &str, upgrade: Value| json!({"spec": {"version": version, "upgrade": upgrade}});
    // The brake: skip the webhook.
    assert_eq!(
        eval(
            "UPDATE",
            spec("0.5.0", json!({"paused": true})),
            spec("0.5.0", json!({}))
        ),
        Ok(false)
    );
    // A version change, with or without the brake, an unpause, a create: call it.
    assert_eq!(
        eval(
            "UPDATE",
            spec("0.6.0", json!({"paused": true})),
            spec("0.5.0", json!({}))
        ),
        Ok(true)
    );
    assert_eq!(
        eval(
            "UPDATE",
            spec("0.5.0", json!({"paused": false})),
            spec("0.5.0", json!({"paused": true}))
        ),
        Ok(true)
    );
    assert_eq!(
        eval(
            "UPDATE",
            json!({"spec": {"version": "0.5.0"}}),
            spec("0.5.0", json!({}))
        ),
        Ok(true)
    );
    assert_eq!(
        eval(
            "CREATE",
            spec("0.5.0", json!({"paused": true})),
            Value::Null
        ),
        Ok(true)
    );
}

#[test]
fn compile_errors_are_worded_as_the_api_server_words_them() {
    assert_eq!(
        refused("foo == 1"),
        "compilation failed: ERROR: <input>:1:1: undeclared reference to 'foo' (in container '')\n | foo == 1\n | ^"
    );
    assert_eq!(
        refused("request.foo == 'x'"),
        "compilation failed: ERROR: <input>:1:8: undefined field 'foo'\n | request.foo == 'x'\n | .......^"
    );
    assert_eq!(
        refused("request.name == 1"),
        "compilation failed: ERROR: <input>:1:14: found no matching overload for '_==_' applied to '(string, int)'\n | request.name == 1\n | .............^"
    );
    assert_eq!(refused("object.spec.paused"), "must evaluate to bool");
    assert_eq!(refused("size('a')"), "must evaluate to bool");
    assert!(refused("request.dryRun &&\n  1").contains(
        "ERROR: <input>:1:16: found no matching overload for '_&&_' applied to '(bool, int)'"
    ));
    assert!(refused("!1").contains("found no matching overload for '!_' applied to '(int)'"));
    assert!(refused("1 < 'a'").contains("'_<_' applied to '(int, string)'"));
    assert!(refused("'a' in 'abc'").contains("'@in' applied to '(string, string)'"));
    assert!(refused("size(1) == 1").contains("'size' applied to '(int)'"));
    assert!(refused("request.dryRun.x").contains("type 'bool' does not support field selection"));
    assert!(refused("has(object)").contains("invalid argument to has() macro"));
    // A second line: the location and the snippet are of that line.
    assert_eq!(
        refused("true &&\n  nope"),
        "compilation failed: ERROR: <input>:2:3: undeclared reference to 'nope' (in container '')\n |   nope\n | ..^"
    );
}

#[test]
fn syntax_errors() {
    assert!(refused("(true").contains("Syntax error: expected ')', found end of input"));
    assert!(refused("true true").contains("Syntax error: unexpected 'true'"));
    assert!(refused("a = 1").contains("Syntax error: token recognition error at: '='"));
    assert!(refused("'abc").contains("Syntax error: unterminated string literal"));
    assert!(refused("'\\q' == ''").contains("invalid escape sequence \\q"));
    assert!(refused("").contains("Syntax error: unexpected end of input"));
    assert!(refused("99999999999999999999 > 1").contains("invalid int literal"));
    assert!(refused("true && #").contains("token recognition error at: '#'"));
}

#[test]
fn what_is_not_supported_is_named() {
    for (src, what) in [
        (
            "object.spec.replicas + 1 == 2",
            "the arithmetic operator '+'",
        ),
        (
            "object.spec.replicas * 2 == 2",
            "the arithmetic operator '*'",
        ),
        ("-object.spec.replicas == 2", "the arithmetic operator '-'"),
        ("true ? true : false", "the conditional operator '? :'"),
        (
            "object.metadata.labels['app'] == 'x'",
            "indexing with '[...]'",
        ),
        ("{'a': 1} == {'a': 1}", "map literals"),
        ("object.spec.ratio == 1.5", "double literals"),
        ("object.spec.replicas == 1u", "unsigned integer literals"),
        (
            "object.spec.replicas == 0x1",
            "hexadecimal integer literals",
        ),
        ("r'a' == 'a'", "raw and bytes string literals"),
        ("'''a''' == 'a'", "triple-quoted string literals"),
        ("request.name.startsWith('a')", "the function 'startsWith'"),
        ("object.spec.tags.all(t, t == 'a')", "the function 'all'"),
        ("matches('a', 'b')", "the function 'matches'"),
        ("authorizer == null", "the variable 'authorizer'"),
        ("params.x == 1", "the variable 'params'"),
        (".object.spec == null", "identifiers with a leading '.'"),
    ] {
        let e = refused(src);
        assert!(
            e.contains(&format!(
                "not supported by the sandbox's CEL subset: {what}"
            )),
            "{src}: {e}"
        );
        assert!(
            e.starts_with("compilation failed: ERROR: <input>:1:"),
            "{e}"
        );
    }
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let nested = |n: usize, open: &str, close: &str| {
        format!("{}true{} == true", open.repeat(n), close.repeat(n))
    };
    for src in [
        nested(49, "(", ")"),
        nested(49, "!", ""),
        format!("size({}true{}) == 1", "[".repeat(48), "]".repeat(48)),
    ] {
        assert!(compile(&src).is_ok(), "{src}: {:?}", compile(&src).err());
    }
    for (open, close) in [("(", ")"), ("[", "]"), ("!", ""), ("size(", ")")] {
        let e = refused(&nested(100_000, open, close));
        assert!(
            e.contains("not supported by the sandbox's CEL subset: parentheses, lists, calls or '!' nested more than 50 levels deep"),
            "{open}: {e}"
        );
    }
    let chain = |n: usize, sep: &str| vec!["object.a == 1"; n].join(sep);
    let p = compile(&chain(240, " && ")).unwrap_or_else(|e| panic!("{e}"));
    let o = json!({"a": 1});
    let req = request("UPDATE");
    let vars = Activation {
        object: &o,
        old_object: &o,
        request: &req,
    };
    assert_eq!(p.evaluate(&vars), Ok(true));
    for src in [
        chain(100_000, " && "),
        chain(100_000, " || "),
        format!("{} == 1", vec!["object"; 100_000].join(".")),
    ] {
        let e = refused(&src);
        assert!(
            e.contains("not supported by the sandbox's CEL subset: expressions more than 250 operations deep"),
            "{e}"
        );
    }
}

#[test]
fn static_types_accept_what_cel_accepts() {
    for src in [
        "object == null",
        "oldObject != null",
        "request.userInfo.groups == ['a']",
        "'k' in request.userInfo.extra",
        "request.userInfo.extra.k == ['v']",
        "[1, 'a'] == object.spec.tags",
        "size(request.userInfo.groups) > 0",
        "request.options == null || true",
    ] {
        assert!(compile(src).is_ok(), "{src}: {:?}", compile(src).err());
    }
    assert!(refused("request.name == null").contains("'_==_' applied to '(string, null_type)'"));
    assert!(refused("request.userInfo.groups == [1]").contains("'(list(string), list(int))'"));
}
