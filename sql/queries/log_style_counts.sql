-- The vote log's battles whose two responses have style counts (sql/queries/log_results.sql, response_style),
-- in battle order: the competitors, the result and both responses' counts (stages/rate.py, style control).
SELECT r.a, r.d, r.s,
       fa.length AS a_length, fa.headers AS a_headers, fa.lists AS a_lists, fa.bold AS a_bold,
       fd.length AS d_length, fd.headers AS d_headers, fd.lists AS d_lists, fd.bold AS d_bold
FROM _wf_log_results r
JOIN _wf_log_battles b USING (pos)
JOIN response_style fa ON fa.response_id = b.attacker_response_id AND fa.algorithm = ?
JOIN response_style fd ON fd.response_id = b.defender_response_id AND fd.algorithm = ?
ORDER BY r.pos
