-- The rows of the latest `warriorflow judges calibrate`: its judges by name, then the panel.
SELECT calibration_id, judge, pairs, accuracy, tie_rate, flip_rate, first_position_share, metrics, pairs_source,
       created_at
FROM judge_calibrations
WHERE calibration_id = (SELECT calibration_id FROM judge_calibrations
                        ORDER BY created_at DESC, calibration_id LIMIT 1)
ORDER BY judge = 'panel', judge
