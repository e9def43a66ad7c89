mod common;
use common::*;

#[test]
fn eval_prints_non_unit_result() {
    assert_eq!(eval_ok("1 + 2"), "3\n");
    assert_eq!(eval_ok("let x = 1;"), "");
    assert_eq!(eval_ok("\"raw\""), "raw\n");
}
