"""Issue 17, the format round 2: each wall an author hit on v1.0.0, and what happens now.

Every test names the v1.0.0 behaviour it replaces in a comment, so a reader
sees which wall it guards.
"""

from __future__ import annotations

import textwrap

import engine
from engine.guideline import check_text

from .conftest import MINIMAL_HEAD

KDIGO = MINIMAL_HEAD + textwrap.dedent("""\
    facts:
      gfr_category:
        type: enum
        values: [G1, G2, G3a, G3b, G4, G5]
        label: {fr: Catégorie DFG, en: GFR category}
      albuminuria:
        type: enum
        values: [A1, A2, A3]
        label: {fr: Albuminurie, en: Albuminuria}
    tables:
      risk:
        title: {fr: Risque, en: Risk}
        inputs: [{expr: gfr_category}, {expr: albuminuria}]
        outputs: {risk_level: null}
        value_labels:
          risk_level:
            low: {fr: faible, en: low}
            very_high: {fr: très élevé, en: very high}
        rows:
          - {when: [[G1, G2], A1], then: {risk_level: low}}
          - {when: [[G3a, G3b, G4, G5], any], then: {risk_level: very_high}}
          - {when: [[G1, G2], [A2, A3]], then: {risk_level: very_high}}
        otherwise: {risk_level: null}
    rules:
      - id: very-high
        statements: ["1.2.4", 3]
        when: risk_level == 'very_high' and gfr_category != 'G3a'
        then:
          - id: very-high
            kind: information
            text: {fr: "Risque {{ risk_level }}", en: "Risk {{ risk_level }}"}
    """)


def test_enum_values_with_capitals_and_dotted_statement_ids_compile() -> None:
    # v1.0.0: 'G3a' failed the schema (values were lower case) and "1.2.4" was not an integer
    guideline = engine.load_text(KDIGO, "kdigo.yaml")
    rule = guideline.compiled.rules[0]
    assert rule.statements == ("1.2.4", 3)
    result = guideline.evaluate({"gfr_category": "G4", "albuminuria": "A1"})
    assert [r.id for r in result.recommendations] == ["very-high"]


def test_table_output_labels_are_shown_in_the_patients_language() -> None:
    # v1.0.0: the French page and the why showed the raw value 'very_high'
    guideline = engine.load_text(KDIGO, "kdigo.yaml")
    fr = guideline.evaluate({"gfr_category": "G4", "albuminuria": "A1"}, lang="fr").to_dict()
    assert fr["values"]["risk_level"]["display"] == "très élevé"
    en = guideline.evaluate({"gfr_category": "G1", "albuminuria": "A1"}, lang="en").to_dict()
    assert en["values"]["risk_level"]["display"] == "low"
    assert en["values"]["risk_level"]["value"] == "low"  # the value itself is unchanged


def test_a_label_for_a_value_no_row_gives_is_an_error_with_did_you_mean() -> None:
    text = KDIGO.replace("very_high: {fr: très élevé", "very_hihg: {fr: très élevé")
    _, found = check_text(text, "kdigo.yaml")
    codes = [(d.line, d.code, d.message, d.hint) for d in found if d.severity == "error"]
    assert codes == [(24, "table.unknown-value", "no row gives 'very_hihg' to risk_level",
                      "did you mean 'very_high'?")]


def test_an_unquoted_comma_in_a_flow_text_is_one_error_with_a_quote_hint() -> None:
    # v1.0.0: four schema errors about a key "en ans" that does not have the expected form
    text = KDIGO.replace("label: {fr: Albuminurie, en: Albuminuria}",
                         "label: {fr: Albuminurie, en mg/g, en: Albuminuria}")
    _, found = check_text(text, "kdigo.yaml")
    assert [(d.line, d.col, d.code) for d in found] == [(15, 30, "yaml.comma-in-text")]
    assert found[0].hint == 'quote the text it belongs to: fr: "Albuminurie, en mg/g"'
    # a key written with its colon and nothing after it is not this mistake
    _, found = check_text(text.replace("en mg/g,", "en_mg:,"), "kdigo.yaml")
    assert "yaml.comma-in-text" not in [d.code for d in found]
