# ---- main.ps1: runs the action and always prints one result line ----------
try {
	Invoke-PassportAction
} catch {
	if ($script:ExitCode -eq 0) {
		$script:ExitCode = $ExFailed
		[Console]::Error.WriteLine('passport: ' + $PassportAction + ': step ' + $script:Step + ' failed: ' + $_.Exception.GetType().FullName)
	}
} finally {
	if (-not $script:Done) {
		if ($script:ExitCode -eq 0) { $script:ExitCode = $ExFailed }
		Write-PassportResult 'error' @(('code=' + $script:ExitCode), ('step=' + $script:Step))
	}
}
exit $script:ExitCode
