# ---- sweep.ps1: removes Passport users whose grant record has expired -------
function Invoke-PassportAction {
	$script:Step = 'sweep'
	$now = [System.DateTimeOffset]::UtcNow.ToUnixTimeSeconds()
	$removed = @()
	$kept = 0
	$failed = 0
	if (Test-Path -LiteralPath $PassportGrants) {
		foreach ($k in @(Get-ChildItem -LiteralPath $PassportGrants)) {
			$name = $k.PSChildName
			if (-not (Test-PassportValue $name $ReUser)) { continue }
			$r = Get-PassportRecord $name
			$e = Get-PassportRecordValue $r 'expires'
			if (-not (Test-PassportValue $e $ReEpoch) -or [long]$e -gt $now) { $kept++; continue }
			try {
				$user = Get-PassportUser $name
				if ($null -ne $user -and -not (Test-PassportMember $user)) { $failed++; continue }
				Remove-PassportUser $user $name
				$removed += $name
			} catch {
				$failed++
				[Console]::Error.WriteLine('passport: sweep could not remove one user: ' + $_.Exception.GetType().FullName)
			}
		}
	}
	$script:Step = 'sweep'
	$list = 'none'
	if ($removed.Count -gt 0) { $list = ($removed | Select-Object -First 40) -join ',' }
	Write-PassportResult 'ok' @(('removed=' + $removed.Count), ('users=' + $list), ('kept=' + $kept), ('failed=' + $failed))
}
