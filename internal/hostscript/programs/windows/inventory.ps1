# ---- inventory.ps1: read-only -----------------------------------------------
# Lists name:expiry:state (live, norecord, nouser), at most 40 entries.
function Invoke-PassportAction {
	$script:Step = 'inventory'
	$names = @{}
	if (Test-PassportGroupOwned) {
		foreach ($m in @(Get-LocalGroupMember -Name $PassportGroup)) {
			$short = ([string]$m.Name).Split('\')[-1]
			if ($m.PrincipalSource -eq 'Local' -and (Test-PassportValue $short $ReUser)) { $names[$short] = 'user' }
		}
	}
	if (Test-Path -LiteralPath $PassportGrants) {
		foreach ($k in @(Get-ChildItem -LiteralPath $PassportGrants)) {
			if (Test-PassportValue $k.PSChildName $ReUser) {
				if ($names.ContainsKey($k.PSChildName)) { $names[$k.PSChildName] = 'live' } else { $names[$k.PSChildName] = 'nouser' }
			}
		}
	}
	$entries = @()
	foreach ($n in @($names.Keys | Sort-Object)) {
		$state = $names[$n]
		if ($state -eq 'user') { $state = 'norecord' }
		$exp = 'none'
		$r = Get-PassportRecord $n
		$e = Get-PassportRecordValue $r 'expires'
		if (Test-PassportValue $e $ReEpoch) { $exp = $e }
		$entries += ($n + ':' + $exp + ':' + $state)
	}
	$count = $entries.Count
	$truncated = 'no'
	if ($count -gt 40) { $entries = $entries[0..39]; $truncated = 'yes' }
	$list = 'none'
	if ($entries.Count -gt 0) { $list = $entries -join ',' }
	Write-PassportResult 'ok' @(('count=' + $count), ('accounts=' + $list), ('truncated=' + $truncated))
}
