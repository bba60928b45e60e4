WITH clinical_events_2 AS (
  SELECT
    t.patient_id,
    CAST(COUNT(*) FILTER(WHERE
      (
        t.snomedct_code IN ('190330002', '313436004', '44054006', '46635009', '73211009')
      )) AS BIGINT) AS v1,
    MIN_BY(
      STRUCT(
        t.patient_id AS patient_id,
        t.date AS date,
        t.snomedct_code AS snomedct_code,
        t.numeric_value AS numeric_value
      ),
      STRUCT(
        NOT (
          t.date IS NULL
        ) AS n0,
        COALESCE(t.date, CAST('1970-01-01' AS DATE)) AS k0,
        NOT (
          t.snomedct_code IS NULL
        ) AS n1,
        COALESCE(t.snomedct_code, '') AS k1,
        NOT (
          t.numeric_value IS NULL
        ) AS n2,
        COALESCE(t.numeric_value, CAST(0.0 AS DOUBLE)) AS k2
      )
    ) FILTER(WHERE
      (
        t.snomedct_code IN ('190330002', '313436004', '44054006', '46635009', '73211009')
      )) AS v2,
    CAST(COUNT(*) FILTER(WHERE
      (
        t.snomedct_code IN ('1201005', '38341003', '59621000')
      )
      AND (
        (
          t.date >= CAST('2019-01-01' AS DATE)
        )
        AND (
          t.date <= CAST('2024-01-01' AS DATE)
        )
      )) AS BIGINT) AS v3
  FROM `clinical_events` AS t
  WHERE
    (
      t.snomedct_code IN ('190330002', '313436004', '44054006', '46635009', '73211009')
    )
    OR (
      (
        t.snomedct_code IN ('1201005', '38341003', '59621000')
      )
      AND (
        (
          t.date >= CAST('2019-01-01' AS DATE)
        )
        AND (
          t.date <= CAST('2024-01-01' AS DATE)
        )
      )
    )
  GROUP BY
    t.patient_id
), lab_results_3 AS (
  SELECT
    t.patient_id,
    CAST(COUNT(*) FILTER(WHERE
      (
        t.code = '4548-4'
      )
      AND (
        (
          t.date >= CAST('2023-01-01' AS DATE)
        )
        AND (
          t.date <= CAST('2024-01-01' AS DATE)
        )
      )) AS BIGINT) AS v1,
    MAX_BY(
      STRUCT(
        t.patient_id AS patient_id,
        t.date AS date,
        t.code AS code,
        t.value AS value,
        t.unit AS unit
      ),
      STRUCT(
        NOT (
          t.date IS NULL
        ) AS n0,
        COALESCE(t.date, CAST('1970-01-01' AS DATE)) AS k0,
        NOT (
          t.code IS NULL
        ) AS n1,
        COALESCE(t.code, '') AS k1,
        NOT (
          t.value IS NULL
        ) AS n2,
        COALESCE(t.value, CAST(0.0 AS DOUBLE)) AS k2,
        NOT (
          t.unit IS NULL
        ) AS n3,
        COALESCE(t.unit, '') AS k3
      )
    ) FILTER(WHERE
      (
        t.code = '4548-4'
      )) AS v2,
    MAX_BY(
      STRUCT(
        t.patient_id AS patient_id,
        t.date AS date,
        t.code AS code,
        t.value AS value,
        t.unit AS unit
      ),
      STRUCT(
        NOT (
          t.date IS NULL
        ) AS n0,
        COALESCE(t.date, CAST('1970-01-01' AS DATE)) AS k0,
        NOT (
          t.code IS NULL
        ) AS n1,
        COALESCE(t.code, '') AS k1,
        NOT (
          t.value IS NULL
        ) AS n2,
        COALESCE(t.value, CAST(0.0 AS DOUBLE)) AS k2,
        NOT (
          t.unit IS NULL
        ) AS n3,
        COALESCE(t.unit, '') AS k3
      )
    ) FILTER(WHERE
      (
        t.code = '2093-3'
      )) AS v3
  FROM `lab_results` AS t
  WHERE
    (
      (
        t.code = '4548-4'
      )
      AND (
        (
          t.date >= CAST('2023-01-01' AS DATE)
        )
        AND (
          t.date <= CAST('2024-01-01' AS DATE)
        )
      )
    )
    OR (
      t.code = '4548-4'
    )
    OR (
      t.code = '2093-3'
    )
  GROUP BY
    t.patient_id
), practice_registrations_1 AS (
  SELECT
    t.patient_id,
    CAST(COUNT(*) FILTER(WHERE
      (
        (
          t.start_date <= CAST('2024-01-01' AS DATE)
        )
        AND (
          (
            t.end_date IS NULL
          ) OR (
            t.end_date >= CAST('2024-01-01' AS DATE)
          )
        )
      )) AS BIGINT) AS v1
  FROM `practice_registrations` AS t
  WHERE
    (
      (
        t.start_date <= CAST('2024-01-01' AS DATE)
      )
      AND (
        (
          t.end_date IS NULL
        ) OR (
          t.end_date >= CAST('2024-01-01' AS DATE)
        )
      )
    )
  GROUP BY
    t.patient_id
)
SELECT
  population.patient_id AS `patient_id`,
  (
    (
      CAST(YEAR(CAST('2024-01-01' AS DATE)) AS BIGINT) - CAST(YEAR(patients.date_of_birth) AS BIGINT)
    ) - CASE
      WHEN CAST(MONTH(CAST('2024-01-01' AS DATE)) AS BIGINT) < CAST(MONTH(patients.date_of_birth) AS BIGINT)
      OR (
        CAST(MONTH(CAST('2024-01-01' AS DATE)) AS BIGINT) = CAST(MONTH(patients.date_of_birth) AS BIGINT)
        AND CAST(DAY(CAST('2024-01-01' AS DATE)) AS BIGINT) < CAST(DAY(patients.date_of_birth) AS BIGINT)
      )
      THEN CAST(1 AS BIGINT)
      ELSE CAST(0 AS BIGINT)
    END
  ) AS `age`,
  CASE
    WHEN (
      (
        (
          CAST(YEAR(CAST('2024-01-01' AS DATE)) AS BIGINT) - CAST(YEAR(patients.date_of_birth) AS BIGINT)
        ) - CASE
          WHEN CAST(MONTH(CAST('2024-01-01' AS DATE)) AS BIGINT) < CAST(MONTH(patients.date_of_birth) AS BIGINT)
          OR (
            CAST(MONTH(CAST('2024-01-01' AS DATE)) AS BIGINT) = CAST(MONTH(patients.date_of_birth) AS BIGINT)
            AND CAST(DAY(CAST('2024-01-01' AS DATE)) AS BIGINT) < CAST(DAY(patients.date_of_birth) AS BIGINT)
          )
          THEN CAST(1 AS BIGINT)
          ELSE CAST(0 AS BIGINT)
        END
      ) < CAST(40 AS BIGINT)
    )
    THEN '18-39'
    WHEN (
      (
        (
          CAST(YEAR(CAST('2024-01-01' AS DATE)) AS BIGINT) - CAST(YEAR(patients.date_of_birth) AS BIGINT)
        ) - CASE
          WHEN CAST(MONTH(CAST('2024-01-01' AS DATE)) AS BIGINT) < CAST(MONTH(patients.date_of_birth) AS BIGINT)
          OR (
            CAST(MONTH(CAST('2024-01-01' AS DATE)) AS BIGINT) = CAST(MONTH(patients.date_of_birth) AS BIGINT)
            AND CAST(DAY(CAST('2024-01-01' AS DATE)) AS BIGINT) < CAST(DAY(patients.date_of_birth) AS BIGINT)
          )
          THEN CAST(1 AS BIGINT)
          ELSE CAST(0 AS BIGINT)
        END
      ) < CAST(65 AS BIGINT)
    )
    THEN '40-64'
    ELSE '65+'
  END AS `age_band`,
  patients.sex AS `sex`,
  (
    COALESCE(clinical_events_2.v1, CAST(0 AS BIGINT)) > CAST(0 AS BIGINT)
  ) AS `has_diabetes`,
  clinical_events_2.v2.date AS `diabetes_date`,
  CASE
    WHEN (
      clinical_events_2.v2.snomedct_code IN ('46635009')
    )
    THEN 'type 1'
    WHEN (
      clinical_events_2.v2.snomedct_code IN ('190330002', '313436004', '44054006')
    )
    THEN 'type 2'
    WHEN (
      clinical_events_2.v2.snomedct_code IN ('73211009')
    )
    THEN 'unspecified'
    ELSE CAST(NULL AS STRING)
  END AS `diabetes_type`,
  (
    (
      CAST(YEAR(CAST('2024-01-01' AS DATE)) AS BIGINT) - CAST(YEAR(clinical_events_2.v2.date) AS BIGINT)
    ) - CASE
      WHEN CAST(MONTH(CAST('2024-01-01' AS DATE)) AS BIGINT) < CAST(MONTH(clinical_events_2.v2.date) AS BIGINT)
      OR (
        CAST(MONTH(CAST('2024-01-01' AS DATE)) AS BIGINT) = CAST(MONTH(clinical_events_2.v2.date) AS BIGINT)
        AND CAST(DAY(CAST('2024-01-01' AS DATE)) AS BIGINT) < CAST(DAY(clinical_events_2.v2.date) AS BIGINT)
      )
      THEN CAST(1 AS BIGINT)
      ELSE CAST(0 AS BIGINT)
    END
  ) AS `years_with_diabetes`,
  COALESCE(lab_results_3.v1, CAST(0 AS BIGINT)) AS `hba1c_tests_last_year`,
  lab_results_3.v2.value AS `latest_hba1c`,
  lab_results_3.v3.value AS `latest_cholesterol`,
  (
    COALESCE(clinical_events_2.v3, CAST(0 AS BIGINT)) > CAST(0 AS BIGINT)
  ) AS `hypertension_last_5_years`
FROM (
  SELECT
    patient_id
  FROM `patients`
  UNION
  SELECT
    patient_id
  FROM `practice_registrations`
) AS population
LEFT JOIN practice_registrations_1
  ON practice_registrations_1.patient_id = population.patient_id
LEFT JOIN `patients`
  ON patients.patient_id = population.patient_id
LEFT JOIN clinical_events_2
  ON clinical_events_2.patient_id = population.patient_id
LEFT JOIN lab_results_3
  ON lab_results_3.patient_id = population.patient_id
WHERE
  (
    (
      (
        COALESCE(practice_registrations_1.v1, CAST(0 AS BIGINT)) > CAST(0 AS BIGINT)
      )
      AND (
        (
          patients.date_of_death IS NULL
        )
        OR (
          patients.date_of_death > CAST('2024-01-01' AS DATE)
        )
      )
    )
    AND (
      (
        (
          CAST(YEAR(CAST('2024-01-01' AS DATE)) AS BIGINT) - CAST(YEAR(patients.date_of_birth) AS BIGINT)
        ) - CASE
          WHEN CAST(MONTH(CAST('2024-01-01' AS DATE)) AS BIGINT) < CAST(MONTH(patients.date_of_birth) AS BIGINT)
          OR (
            CAST(MONTH(CAST('2024-01-01' AS DATE)) AS BIGINT) = CAST(MONTH(patients.date_of_birth) AS BIGINT)
            AND CAST(DAY(CAST('2024-01-01' AS DATE)) AS BIGINT) < CAST(DAY(patients.date_of_birth) AS BIGINT)
          )
          THEN CAST(1 AS BIGINT)
          ELSE CAST(0 AS BIGINT)
        END
      ) >= CAST(18 AS BIGINT)
    )
  )
ORDER BY
  population.patient_id
