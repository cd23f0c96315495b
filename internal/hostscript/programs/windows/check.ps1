# ---- check.ps1: read-only ---------------------------------------------------
function Invoke-PassportAction {
	$f = Read-PassportData @('action', 'user', 'request') @('check', $ReUser, $ReRequest)
	$name = $f['user']
	$script:Step = 'check'
	$account = 'absent'
	$user = Get-PassportUser $name
	if ($null -ne $user) {
		$account = 'other'
		if (Test-PassportMember $user) { $account = 'passport' }
	}
	$record = 'absent'
	$expires = '0'
	$r = Get-PassportRecord $name
	if ($null -ne $r) {
		$record = 'other'
		$e = Get-PassportRecordValue $r 'expires'
		if ((Get-PassportRecordValue $r 'request') -ceq $f['request'] -and (Test-PassportValue $e $ReEpoch)) {
			$record = 'this'
			$expires = $e
		}
	}
	Write-PassportResult 'ok' @(('user=' + $name), ('account=' + $account), ('record=' + $record), ('expires=' + $expires))
}
