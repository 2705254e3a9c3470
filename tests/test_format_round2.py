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


TEXTS = MINIMAL_HEAD + textwrap.dedent("""\
    facts:
      sex: {type: enum, values: [female, male], label: {fr: Sexe, en: Sex}}
      risk: {type: enum, values: [low, high, very_high], label: {fr: Risque, en: Risk}}
      smoker: {type: boolean, label: {fr: Fumeur, en: Smoker}}
      age: {type: integer, range: {min: 0, max: 120}, label: {fr: Âge, en: Age}}
    rules:
      - id: advice
        when: age >= 18
        then:
          - id: advice
            kind: information
            text:
              fr: >-
                Patient{% if sex == 'female' %}e{% else %}{% endif %} :
                {% if sex == 'female' %}femme{% else %}homme{% endif %},
                {% if risk == 'high' %}risque élevé{% elif risk == 'very_high' %}risque très élevé{% else %}faible{% endif %}
                {%- if smoker is unknown %}, tabac à préciser{% elif not smoker %}, non-fumeur{% endif %}
                {{- ' (' ~ ('majeur' if age >= 18 else 'mineur') ~ ')' }}.
              en: "{% if sex is known %}{{ sex }}{% endif %}."
    """)


def test_an_unknown_condition_renders_no_branch_unless_the_text_handles_unknown() -> None:
    # v1.0.0: None == 'female' is false, so a patient of unknown sex was told "homme", and an
    # unknown risk "risque faible"; `not smoker` with smoker unknown printed "non-fumeur".
    guideline = engine.load_text(TEXTS, "texts.yaml")
    texts = [guideline.evaluate({"age": 40}, lang="fr").recommendations[0].text for _ in range(3)]
    assert texts == ["Patient : , , tabac à préciser (majeur)."] * 3  # the translated text and Jinja agree
    jinja = guideline.compiled.rules[0].then[0].templates["fr"].jinja_only()
    assert jinja.render({"age": 40, "sex": None, "risk": None, "smoker": None}, 1000) == texts[0]
    known = guideline.evaluate({"age": 40, "sex": "female", "risk": "very_high", "smoker": False}, lang="fr")
    assert known.recommendations[0].text == "Patiente : femme, risque très élevé, non-fumeur (majeur)."
    assert guideline.evaluate({"age": 40, "sex": "male"}, lang="en").recommendations[0].text == "male."


def test_a_literal_a_text_compares_is_checked_like_a_condition_with_its_position() -> None:
    # v1.0.0: passed validate and lint --strict, and a high-risk patient was told "very high risk"
    text = TEXTS.replace("{% if risk == 'high' %}", "{% if risk == 'hihg' %}")
    _, found = check_text(text, "texts.yaml")
    assert [(d.line, d.col, d.code, d.message, d.hint) for d in found] == [
        (22, 27, "template.unknown-value", "'hihg' is not a value of risk", "did you mean 'high'?")]
    text = TEXTS.replace("{% elif not smoker %}", "{% elif smoker == 'no' %}")
    _, found = check_text(text, "texts.yaml")
    assert [(d.line, d.col, d.code) for d in found] == [(23, 76, "template.type")]
    assert found[0].message == "smoker is a boolean: it is never equal to the text 'no'"


def test_an_unknown_name_in_a_text_points_at_the_name_not_at_the_texts_first_line() -> None:
    # v1.0.0: reported at the first line of the text (line 20 here, column 13)
    text = TEXTS.replace("{% elif risk == 'very_high' %}", "{% elif rsik == 'very_high' %}")
    _, found = check_text(text, "texts.yaml")
    assert [(d.line, d.col, d.code, d.hint) for d in found] == [
        (22, 56, "template.unknown-name", "did you mean 'risk'?")]


HEAT_MAP = MINIMAL_HEAD + textwrap.dedent("""\
    facts:
      gfr_category: {type: enum, values: [G1, G2, G3], label: {fr: DFG, en: GFR}}
      albuminuria: {type: enum, values: [A1, A2, A3], label: {fr: Albuminurie, en: Albuminuria}}
      age: {type: integer, range: {min: 18, max: 120}, label: {fr: Âge, en: Age}}
      egfr: {type: number, range: {min: 0, max: 200}, label: {fr: DFGe, en: eGFR}}
    tables:
      risk:
        inputs: [{expr: gfr_category}, {expr: albuminuria}]
        outputs: {risk_level: null}
        rows:
          - {id: g1-a1, when: [G1, A1], then: {risk_level: low}}
          - {id: g1-a2, when: [G1, A2], then: {risk_level: moderate}}
          - {id: g1-a3, when: [G1, A3], then: {risk_level: high}}
          - {id: g2-a1, when: [G2, A1], then: {risk_level: low}}
          - {id: g2-a2, when: [G2, A2], then: {risk_level: moderate}}
          - {id: g2-a3, when: [G2, A3], then: {risk_level: high}}
          - {id: g3-a1, when: [G3, A1], then: {risk_level: moderate}}
          - {id: g3-a2, when: [G3, A2], then: {risk_level: high}}
          - {id: g3-a3, when: [G3, A3], then: {risk_level: very_high}}
        otherwise: {risk_level: null}
      follow_up:
        inputs: [{expr: risk_level}, {expr: age}]
        outputs: {visits_per_year: null}
        rows:
          - {id: low-young, when: [low, "[18, 64]"], then: {visits_per_year: 1}}
          - {id: low-old, when: [low, "[65, 120]"], then: {visits_per_year: 1}}
          - {id: moderate, when: [moderate, any], then: {visits_per_year: 1}}
          - {id: high, when: [high, any], then: {visits_per_year: 2}}
          - {id: very-high, when: [very_high, any], then: {visits_per_year: 3}}
        otherwise: {visits_per_year: null}
      dose:
        inputs: [{expr: age}, {expr: egfr, domain: "[0, 200]"}]
        outputs: {dose_mg: mg}
        rows:
          - {id: young-low, when: ["[18, 74]", "[0, 30)"], then: {dose_mg: 5}}
          - {id: young-high, when: ["[18, 74]", "[30, 200]"], then: {dose_mg: 10}}
          - {id: old-low, when: ["[75, 120]", "[0, 30)"], then: {dose_mg: 2.5}}
          - {id: old-high, when: ["[75, 120]", "[30, 200]"], then: {dose_mg: 5}}
        otherwise: {dose_mg: null}
    rules:
      - id: follow
        when: visits_per_year >= 1 and dose_mg > 0
        source: {section: "1"}
        then: [{id: follow, kind: information, text: {fr: Suivi, en: Follow-up}}]
    """)


def _findings(text: str) -> list[tuple[int, str, str]]:
    from engine.authoring.lint import lint_text

    found, loaded = lint_text(text, "heat.yaml")
    assert loaded, found
    return [(d.line, d.code, d.message) for d in found if d.severity != "info"]


def test_a_two_dimensional_table_without_gaps_and_an_integer_age_give_no_finding() -> None:
    # v1.0.0 skipped tables with two numeric inputs or another table's output as input, and an
    # integer age cut [18, 64] / [65, 120] reported "no row covers (64, 65)"
    assert _findings(HEAT_MAP) == []


def test_a_deleted_heat_map_cell_is_a_gap_named_in_words() -> None:
    text = HEAT_MAP.replace("      - {id: g2-a2, when: [G2, A2], then: {risk_level: moderate}}\n", "")
    assert _findings(text) == [(16, "table-gap", "table 'risk': no row covers gfr_category = G2, albuminuria = A2")]


def test_gaps_and_overlaps_of_two_numeric_inputs_and_of_a_table_output_input() -> None:
    text = HEAT_MAP.replace('"[30, 200]"], then: {dose_mg: 10}', '"[40, 200]"], then: {dose_mg: 10}')
    text = text.replace('when: [low, "[65, 120]"]', 'when: [low, "[60, 120]"]')
    assert _findings(text) == [
        (32, "table-overlap", "table 'follow_up': rows low-young and low-old both match [60, 64] when risk_level = low"),
        (40, "table-gap", "table 'dose': no row covers age in [18, 74], egfr in [30, 40)"),
    ]


def test_a_duplicate_row_is_found_at_lint_time() -> None:
    # v1.0.0: found only when a patient hit both rows at run time
    text = HEAT_MAP.replace("      - {id: g3-a3, when: [G3, A3], then: {risk_level: very_high}}\n",
                            "      - {id: g3-a3, when: [G3, A3], then: {risk_level: very_high}}\n"
                            "      - {id: g3-a3-copy, when: [G3, A3], then: {risk_level: high}}\n")
    assert _findings(text) == [(26, "table-duplicate-row",
                                "table 'risk': row g3-a3-copy has the same cells as row g3-a3 (G3, A3)")]


def test_known_in_a_condition_is_a_warning_saying_what_happens_to_the_patient() -> None:
    # v1.0.0: known(x) silently turned "undetermined, needs x" into "not fired"
    text = HEAT_MAP.replace("when: visits_per_year >= 1 and dose_mg > 0", "when: visits_per_year >= 1 and known(dose_mg)")
    assert _findings(text) == [(48, "known-masks-unknown",
                                "rule 'follow': when dose_mg is unknown (from age, egfr), the rule is not fired instead "
                                "of undetermined: a patient with it missing gets neither the recommendation nor "
                                "'dose_mg needed'")]


EGFR = MINIMAL_HEAD + textwrap.dedent("""\
    facts:
      lab_egfr: {type: number, range: {min: 1, max: 200}, label: {fr: DFGe du laboratoire, en: Laboratory eGFR}}
      creatinine: {type: number, range: {min: 0.1, max: 20}, label: {fr: Créatinine, en: Creatinine}}
      age: {type: integer, range: {min: 18, max: 120}, label: {fr: Âge, en: Age}}
      diabetes: {type: boolean, label: {fr: Diabète, en: Diabetes}}
    derived:
      egfr:
        type: number
        label: {fr: DFGe, en: eGFR}
        expr: >-
          lab_egfr if known(lab_egfr)
          else 142 * min(creatinine / 0.9, 1) ** -0.302 * max(creatinine / 0.9, 1) ** -1.2 * 0.9938 ** age
    rules:
      - id: refer
        source: {section: "1"}
        when: egfr < 30 or (diabetes and max(egfr, 0) < 45)
        then: [{id: refer, kind: referral, text: {fr: Adresser, en: Refer}}]
    """)


def test_needs_are_the_facts_that_could_still_decide_and_the_why_lists_no_function() -> None:
    # v1.0.0: an eGFR computed from creatinine still "needed" the laboratory eGFR, and the why
    # listed the functions as inputs ("known = unknown", "min unknown")
    guideline = engine.load_text(EGFR, "egfr.yaml")
    result = guideline.evaluate({"creatinine": 1.1}, lang="en")
    # age and diabetes together always decide; the laboratory eGFR is not needed, creatinine is given
    assert {u.rule: u.needs for u in result.undetermined} == {"refer": ("age", "diabetes")}
    result = guideline.evaluate({"creatinine": 2.0, "age": 70}, lang="en")  # eGFR about 34: diabetes decides
    assert {u.rule: u.needs for u in result.undetermined} == {"refer": ("diabetes",)}
    result = guideline.evaluate({"creatinine": 4.0, "age": 80, "diabetes": False}, lang="en")
    assert result.recommendation_ids() == ["refer"]
    why = result.to_dict()["recommendations"][0]["why"]["values"]
    assert [w["name"] for w in why] == ["egfr", "diabetes"]
    assert why[0]["how"] == "Laboratory eGFR unknown, Creatinine 4, Age 80"
    assert {u.rule: u.needs for u in guideline.evaluate({"lab_egfr": 40}).undetermined} == {"refer": ("diabetes",)}


def test_the_second_shipped_guideline_passes_validate_lint_strict_and_full_coverage(cli) -> None:
    from .conftest import ROOT

    folder = str(ROOT / "guidelines" / "pneumonia-severity")
    assert cli("validate", folder)[0] == 0
    code, out, _ = cli("lint", "--strict", folder)
    assert code == 0 and out.rstrip().endswith("0 error(s), 0 warning(s), 4 info"), out
    code, out, _ = cli("test", folder, "--coverage", "--min-coverage", "100", "-q")
    assert code == 0 and "100.0% (rules 7/7, table rows 6/6, recommendations 7/7" in out, out


def test_the_second_guideline_decides_with_unknown_items_as_its_cases_say() -> None:
    # the headline behaviour, checked outside the case files: in hospital, the urea not back yet
    from .conftest import ROOT

    g = engine.load(ROOT / "guidelines" / "pneumonia-severity" / "guideline.yaml")
    facts = {"cap_diagnosed": True, "setting": "hospital", "amts": 10, "new_disorientation": False,
             "respiratory_rate": 18, "systolic_bp": 120, "diastolic_bp": 80, "age": 70}
    result = g.evaluate(facts, lang="en")
    assert {u.rule: u.needs for u in result.undetermined} == {
        "mortality-risk": ("urea",), "hospital-home-care": ("urea",), "hospital-based-care": ("urea",)}
    assert result.to_dict()["values"]["curb65"]["display"] == "at least 1, at most 2 (1 item unknown)"
    result = g.evaluate({**facts, "urea": "9 mmol/L"}, lang="fr")
    assert result.recommendation_ids() == ["mortality-risk", "hospital-based-care", "clinical-judgement"]
    assert result.to_dict()["values"]["risk_group"]["display"] == "risque intermédiaire"


def test_a_table_too_large_to_check_says_so() -> None:
    from engine.authoring.lint import lint_text

    values = "[" + ", ".join(f"v{i}" for i in range(8)) + "]"
    facts = "".join(f"  f{i}: {{type: enum, values: {values}, label: {{fr: f, en: f}}}}\n" for i in range(5))
    text = MINIMAL_HEAD + "facts:\n" + facts + textwrap.dedent("""\
        tables:
          big:
            inputs: [{expr: f0}, {expr: f1}, {expr: f2}, {expr: f3}, {expr: f4}]
            outputs: {out: null}
            rows: [{when: [v0, any, any, any, any], then: {out: a}}]
            otherwise: {out: null}
        rules:
          - {id: r, source: {section: "1"}, when: "out == 'a'", then: [{id: r, kind: information, text: {fr: a, en: a}}]}
        """)
    found, loaded = lint_text(text, "big.yaml")
    assert loaded
    assert [(d.code, d.message) for d in found if d.code.startswith("table-")] == [
        ("table-not-checked", "table 'big': 32768 combinations of its inputs, more than 20000: gaps and overlaps "
                              "are not checked")]
